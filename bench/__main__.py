"""`python -m bench` (what `make bench` runs): for now, the synthetic pool generator's own benchmark.

It generates 100,000 candidates with two worker processes, prints the rate and the distribution next
to IRCC's. Options as for `python -m bench.pool_generator` (e.g. `--count 1000000 --kafka`).
"""

import sys

from bench.pool_generator import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
