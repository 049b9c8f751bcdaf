"""Adapters of the draws service: PostgreSQL tables and repository, the ranking HTTP client."""
