"""The ranking service's own series on `/metrics` (`shared.metrics` serves them): the pool and scoring."""

from __future__ import annotations

from prometheus_client.core import Metric

from ranking_service.application.projection import RankingProjection
from shared.metrics import counter, gauge


async def ranking_metrics(service: str, projection: RankingProjection) -> list[Metric]:
    """`ee_ranking_pool_candidates` (absent until the pool is loaded) and `ee_ranking_profiles_scored_total`
    (profiles evaluated by the consumer and the rescoring jobs; its `rate()` is the scoring rate)."""
    scored = counter("ee_ranking_profiles_scored", "Profiles evaluated (CRS, programs, categories)")
    scored.add_metric([service], projection.scored)
    metrics: list[Metric] = [scored]
    view = projection.view
    if view.loaded:
        pool = gauge("ee_ranking_pool_candidates", "Candidates in the pool held in memory")
        pool.add_metric([service], len(view.pool))
        metrics.append(pool)
    return metrics
