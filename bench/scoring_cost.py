"""Benchmark of scoring one raw profile document: the reference way against `score_profile`.

    python -m bench.scoring_cost [--profiles 100000] [--seed 7] [--sample 3000]

    from bench.scoring_cost import measure_scoring
    figures = measure_scoring(100_000)          # a dict; prints nothing

The documents are the seeded synthetic pool's (`bench.pool_generator`), decoded from JSON as the
rebuild decodes them, each scored once as of the generation day, in order, caches empty at the start:
what a rebuild of that pool does. Figures (CPU time of this process, so comparable on a busy machine):

- `reference_us`: `score_reference` (pydantic, the derivation, the grid) per profile, over `sample`
  documents;
- `fast_us`: `score_profile` per profile over all of them (cache misses included);
- `warm_us`: `score_profile` per profile over all of them again, every result in the cache (what
  rescoring a pool already scored that day costs: the raw read, the cache, the result);
- `ratio`: reference_us / fast_us;
- `derived_hits`: share of profiles whose derived results came from the cache;
- `mismatches`: profiles where the two disagree on any field (over the sample), plus profiles whose
  CRS differs from the generator's (over all): 0 when right;
- `load_average`: the machine's 1-, 5- and 15-minute load averages at the end (cores are shared).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import orjson

from ranking_service.domain import scoring
from ranking_service.domain.scoring import UnscorableProfile, score_profile, score_reference
from shared.rules.crs import rules_for_day


def measure_scoring(
    n_profiles: int, *, seed: int = 7, sample: int = 3_000, as_of: date | None = None, workers: int = 2
) -> dict[str, Any]:
    from bench.pool_generator import generate_documents

    as_of = as_of or datetime.now(UTC).date()
    rules = rules_for_day(None, as_of)
    candidates = [
        (orjson.dumps(c.document), c.nominated_by is not None, c.crs)
        for c in generate_documents(n_profiles, seed, as_of, workers=workers)
    ]
    documents = [orjson.loads(text) for text, _, _ in candidates]
    sample_size = min(sample, len(documents))

    started = time.process_time()
    reference = [score_reference(documents[i], as_of, candidates[i][1], rules) for i in range(sample_size)]
    reference_us = (time.process_time() - started) / sample_size * 1e6

    scoring.clear_caches()
    started = time.process_time()
    fast = [
        score_profile(document, as_of, nominated, rules)
        for document, (_, nominated, _) in zip(documents, candidates, strict=True)
    ]
    fast_us = (time.process_time() - started) / len(documents) * 1e6
    missed = scoring.CACHE_STATS.scored_reference

    started = time.process_time()
    warm = [
        score_profile(document, as_of, nominated, rules)
        for document, (_, nominated, _) in zip(documents, candidates, strict=True)
    ]
    warm_us = (time.process_time() - started) / len(documents) * 1e6

    mismatches = sum(1 for i in range(sample_size) if fast[i] != reference[i])
    mismatches += sum(1 for scored, (_, _, crs) in zip(fast, candidates, strict=True) if scored.crs != crs)
    mismatches += sum(1 for again, first in zip(warm, fast, strict=True) if again != first)
    return {
        "profiles": len(documents),
        "sample": sample_size,
        "reference_us": round(reference_us, 1),
        "fast_us": round(fast_us, 1),
        "warm_us": round(warm_us, 1),
        "ratio": round(reference_us / fast_us, 1),
        "derived_hits": round(1 - missed / len(documents), 4),
        "mismatches": mismatches,
        "load_average": [round(load, 2) for load in os.getloadavg()],
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.scoring_cost", description=__doc__.split("\n")[0])
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sample", type=int, default=3_000, help="profiles scored the reference way")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        figures = measure_scoring(args.profiles, seed=args.seed, sample=args.sample)
    except UnscorableProfile as exc:
        print(f"a generated profile is unscorable: {exc}", file=sys.stderr)
        return 1
    print(orjson.dumps(figures, option=orjson.OPT_INDENT_2).decode())
    return 0 if figures["mismatches"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
