"""Command handlers of the draws service, each in one unit of work (one database transaction)."""
