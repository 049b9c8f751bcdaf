"""Adapters of the ranking service: the projection tables in PostgreSQL."""
