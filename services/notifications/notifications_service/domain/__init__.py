"""Pure rules of webhook subscriptions and deliveries: no I/O, no framework imports."""
