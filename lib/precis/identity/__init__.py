"""Identity graph: OneID across sources."""
