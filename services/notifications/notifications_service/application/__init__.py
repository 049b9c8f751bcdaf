"""Commands in a unit of work: subscriptions, the fan-out of events to deliveries, their outcomes."""
