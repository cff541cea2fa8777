"""The speed layer: real-time tags and marketing triggers from events as they land.

``activity`` turns landed rows into resolved activity (ingest's own conforming),
``hot`` computes the real-time tags, ``triggers`` the trigger rules, and ``micro`` is
one micro-batch of the ``stream`` job; ``live`` overlays the real-time tags on the batch
profile.
"""
