"""The ranking application layer: the projection's batch handler, rescoring jobs and queries."""
