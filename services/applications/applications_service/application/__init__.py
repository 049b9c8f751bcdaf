"""application layer of the applications service."""
