"""I/O: tables, the secret box, the webhook sender, the dispatcher, the Kafka consumer."""
