"""Benchmarks of the Express Entry backend (`make bench`), and the synthetic pool they run on.

`bench.pool_generator`: a seeded synthetic pool of profile documents whose CRS distribution follows
IRCC's published one, written to Kafka as profile events or to a JSON-lines file.
"""
