"""Landing -> bronze -> silver: typing, validation, identifier normalization, hashing."""
