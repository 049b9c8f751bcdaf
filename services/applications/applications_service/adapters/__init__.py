"""adapters layer of the applications service."""
