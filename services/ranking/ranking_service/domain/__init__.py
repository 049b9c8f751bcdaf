"""The ranking domain: pure rules and structures (no I/O, no framework imports)."""
