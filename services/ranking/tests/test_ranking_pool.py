"""The in-memory pool: ordering, secondary orderings, queries, distribution, persistence, fingerprint."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from ranking_service.domain.pool import (
    CATEGORIES,
    DISTRIBUTION_BINS,
    PROGRAMS,
    Pool,
    PoolEntry,
    from_us,
    to_us,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def pid(n: int) -> str:
    """A deterministic canonical UUID string; pid(1) < pid(2) < ... as strings."""
    return str(uuid.UUID(int=n))


def entry(
    n: int,
    crs: int,
    minutes: float = 0,
    programs: frozenset[str] | set[str] = frozenset({"fsw"}),
    categories: frozenset[str] | set[str] = frozenset(),
) -> PoolEntry:
    return PoolEntry(pid(n), crs, T0 + timedelta(minutes=minutes), frozenset(programs), frozenset(categories))


def ids(entries: list[PoolEntry]) -> list[str]:
    return [e.profile_id for e in entries]


def pool_of(*entries: PoolEntry) -> Pool:
    pool = Pool()
    for e in entries:
        assert pool.upsert(e) is None
    return pool


# --- ordering -------------------------------------------------------------------------------------


def test_orders_by_score_then_submission_time_then_profile_id() -> None:
    pool = pool_of(
        entry(1, 480, minutes=5),
        entry(2, 510, minutes=30),
        entry(3, 480, minutes=1),
        entry(4, 480, minutes=1),  # same score and instant as 3: the profile_id decides
        entry(5, 300),
        entry(6, 1200, minutes=99),
    )
    assert ids(pool.top(10)) == [pid(6), pid(2), pid(3), pid(4), pid(1), pid(5)]
    assert [pool.rank(pid(n)) for n in (6, 2, 3, 4, 1, 5)] == [1, 2, 3, 4, 5, 6]
    assert ids(list(pool)) == ids(pool.top(10))


def test_ties_at_the_same_score_go_to_the_earlier_submission_whatever_the_profile_id() -> None:
    late_small_id = PoolEntry(pid(1), 500, T0 + timedelta(microseconds=1), frozenset({"cec"}))
    early_big_id = PoolEntry(pid(9), 500, T0, frozenset({"cec"}))
    pool = pool_of(late_small_id, early_big_id)
    assert ids(pool.top(2)) == [pid(9), pid(1)]
    assert pool.rank(pid(9), program="cec") == 1
    assert pool.rank(pid(1), program="cec") == 2


def test_the_key_is_independent_of_the_time_zone_of_submitted_at() -> None:
    toronto = timezone(timedelta(hours=-5))
    local = PoolEntry(pid(1), 450, T0.astimezone(toronto), frozenset({"fsw"}))
    assert local.submitted_at == T0
    assert local.submitted_at.tzinfo is UTC
    assert local.key == (-450, to_us(T0), pid(1))
    assert local == entry(1, 450)


# --- upsert and remove ----------------------------------------------------------------------------


def test_upsert_moves_the_candidate_in_every_ordering_and_out_of_what_it_no_longer_has() -> None:
    a = entry(1, 470, programs={"fsw", "cec"}, categories={"french", "stem"})
    b = entry(2, 460, minutes=1, programs={"fsw", "cec"}, categories={"french", "stem"})
    c = entry(3, 450, minutes=2, programs={"fsw", "cec"}, categories={"french", "stem"})
    pool = pool_of(a, b, c)
    assert pool.rank(pid(3), program="cec") == 3
    assert pool.rank(pid(3), category="stem") == 3

    # c gains a nomination (+600): first everywhere it still is, gone from cec and stem, new in pnp.
    c2 = entry(3, 1050, minutes=2, programs={"fsw", "pnp"}, categories={"french", "healthcare"})
    assert pool.upsert(c2) == c
    assert len(pool) == 3
    assert pool.get(pid(3)) == c2
    assert pool.rank(pid(3)) == 1
    assert pool.rank(pid(3), program="fsw") == 1
    assert pool.rank(pid(3), program="pnp") == 1
    assert pool.rank(pid(3), category="french") == 1
    assert pool.rank(pid(3), category="healthcare") == 1
    assert pool.rank(pid(3), program="cec") is None
    assert pool.rank(pid(3), category="stem") is None
    assert ids(pool.top(10, program="cec")) == [pid(1), pid(2)]
    assert ids(pool.top(10, category="stem")) == [pid(1), pid(2)]
    assert pool.count_at_or_above(450, program="cec") == 2
    assert pool.count_at_or_above(1050) == 1
    assert pool.count_at_or_above(451) == 3  # the old score 450 is gone from the main ordering
    assert pool.distribution()["0-300"] == 0
    assert pool.distribution()["601-1200"] == 1
    pool.check_consistency()


def test_upsert_with_the_same_score_and_time_only_moves_programs_and_categories() -> None:
    a = entry(1, 500, programs={"fsw"}, categories={"trades"})
    b = entry(2, 400, programs={"fsw", "fst"}, categories={"trades"})
    pool = pool_of(a, b)
    b2 = entry(2, 400, programs={"cec"}, categories={"french"})
    assert pool.upsert(b2) == b
    assert pool.rank(pid(2)) == 2
    assert pool.rank(pid(2), program="cec") == 1
    assert pool.rank(pid(2), program="fst") is None
    assert pool.rank(pid(2), program="fsw") is None
    assert pool.rank(pid(2), category="french") == 1
    assert ids(pool.top(5, category="trades")) == [pid(1)]
    assert b2.key == b.key
    pool.check_consistency()


def test_upserting_an_equal_entry_again_changes_nothing() -> None:
    pool = pool_of(entry(1, 500), entry(2, 400))
    before = pool.fingerprint()
    assert pool.upsert(entry(2, 400)) == entry(2, 400)
    assert len(pool) == 2
    assert pool.fingerprint() == before
    pool.check_consistency()


def test_remove_takes_the_candidate_out_of_every_ordering() -> None:
    a = entry(1, 500, programs={"cec"}, categories={"healthcare"})
    b = entry(2, 490, programs={"cec", "fsw"}, categories={"healthcare"})
    c = entry(3, 480, programs={"cec"}, categories={"healthcare"})
    pool = pool_of(a, b, c)
    assert pool.remove(pid(2)) == b
    assert pool.remove(pid(2)) is None
    assert pid(2) not in pool and pid(1) in pool
    assert pool.get(pid(2)) is None
    assert len(pool) == 2
    assert pool.rank(pid(2)) is None
    assert pool.rank(pid(3)) == 2
    assert pool.rank(pid(3), program="cec") == 2
    assert pool.rank(pid(3), category="healthcare") == 2
    assert pool.top(5, program="fsw") == []
    assert pool.count_at_or_above(480, category="healthcare") == 2
    pool.check_consistency()


# --- queries --------------------------------------------------------------------------------------


def _mixed_pool() -> Pool:
    return pool_of(
        entry(1, 720, programs={"fsw", "pnp"}),
        entry(2, 540, programs={"cec"}, categories={"french"}),
        entry(3, 530, programs={"cec", "fsw"}, categories={"stem"}),
        entry(4, 480, programs={"fst"}, categories={"trades"}),
        entry(5, 470, programs={"cec"}, categories={"french", "healthcare"}),
        entry(6, 470, minutes=-1, programs={"fsw"}, categories={"french"}),
    )


def test_rank_per_program_and_category() -> None:
    pool = _mixed_pool()
    assert pool.rank(pid(5)) == 6
    assert pool.rank(pid(6)) == 5
    assert pool.rank(pid(5), program="cec") == 3
    assert pool.rank(pid(6), program="fsw") == 3
    assert pool.rank(pid(1), program="pnp") == 1
    assert pool.rank(pid(4), program="fst") == 1
    assert pool.rank(pid(5), category="french") == 3
    assert pool.rank(pid(6), category="french") == 2
    assert pool.rank(pid(5), category="healthcare") == 1
    assert pool.rank(pid(4), program="cec") is None
    assert pool.rank(pid(4), category="french") is None
    assert pool.rank(pid(99)) is None
    assert pool.rank(pid(99), category="french") is None


def test_queries_refuse_both_filters_and_unknown_codes() -> None:
    pool = _mixed_pool()
    with pytest.raises(ValueError, match="not both"):
        pool.rank(pid(2), program="cec", category="french")
    with pytest.raises(ValueError, match="unknown program 'CEC'"):
        pool.top(5, program="CEC")
    with pytest.raises(ValueError, match="unknown category 'frnch'"):
        pool.count_at_or_above(400, category="frnch")
    with pytest.raises(ValueError, match="unknown category"):
        pool.distribution(category="nursing")
    with pytest.raises(ValueError, match="unknown program"):
        pool.rank(pid(99), program="xx")


def test_top_skips_excluded_ids_and_still_returns_n() -> None:
    pool = _mixed_pool()
    assert ids(pool.top(3)) == [pid(1), pid(2), pid(3)]
    assert ids(pool.top(3, exclude={pid(2)})) == [pid(1), pid(3), pid(4)]
    assert ids(pool.top(3, exclude=frozenset({pid(1), pid(3), pid(99), pid(98)}))) == [pid(2), pid(4), pid(6)]
    assert ids(pool.top(2, program="cec", exclude={pid(2)})) == [pid(3), pid(5)]
    assert ids(pool.top(10, category="french", exclude={pid(6)})) == [pid(2), pid(5)]
    assert ids(pool.top(100)) == [pid(n) for n in (1, 2, 3, 4, 6, 5)]
    assert len(pool.top(100, exclude={pid(n) for n in range(1, 7)})) == 0
    assert pool.top(0) == [] and pool.top(-1, exclude={pid(1)}) == []
    assert Pool().top(10) == []


def test_count_at_or_above_boundaries() -> None:
    pool = _mixed_pool()
    assert pool.count_at_or_above(721) == 0
    assert pool.count_at_or_above(720) == 1
    assert pool.count_at_or_above(541) == 1
    assert pool.count_at_or_above(540) == 2
    assert pool.count_at_or_above(471) == 4
    assert pool.count_at_or_above(470) == 6
    assert pool.count_at_or_above(0) == 6
    assert pool.count_at_or_above(-10) == 6
    assert pool.count_at_or_above(1201) == 0
    assert pool.count_at_or_above(470, program="cec") == 3
    assert pool.count_at_or_above(471, program="cec") == 2
    assert pool.count_at_or_above(470, category="french") == 3
    assert pool.count_at_or_above(540, category="french") == 1
    assert Pool().count_at_or_above(0) == 0


# --- distribution ---------------------------------------------------------------------------------

BOUNDARY_SCORES = (
    0,
    300,
    301,
    350,
    351,
    400,
    401,
    410,
    411,
    450,
    451,
    460,
    461,
    490,
    491,
    500,
    501,
    600,
    601,
    1200,
)


def test_distribution_labels_are_ircc_bins_in_published_order() -> None:
    assert list(Pool().distribution()) == [
        "601-1200",
        "501-600",
        "451-500",
        "491-500",
        "481-490",
        "471-480",
        "461-470",
        "451-460",
        "401-450",
        "441-450",
        "431-440",
        "421-430",
        "411-420",
        "401-410",
        "351-400",
        "301-350",
        "0-300",
        "total",
    ]
    assert set(Pool().distribution().values()) == {0}


def test_distribution_bin_boundaries() -> None:
    pool = pool_of(*(entry(n, score, programs={"cec"}) for n, score in enumerate(BOUNDARY_SCORES)))
    dist = pool.distribution()
    assert dist == {
        "601-1200": 2,  # 601, 1200
        "501-600": 2,  # 501, 600
        "451-500": 6,  # 451, 460, 461, 490, 491, 500
        "491-500": 2,
        "481-490": 1,
        "471-480": 0,
        "461-470": 1,
        "451-460": 2,
        "401-450": 4,  # 401, 410, 411, 450
        "441-450": 1,
        "431-440": 0,
        "421-430": 0,
        "411-420": 1,
        "401-410": 2,
        "351-400": 2,  # 351, 400
        "301-350": 2,  # 301, 350
        "0-300": 2,  # 0, 300
        "total": 20,
    }
    assert pool.distribution(program="cec") == dist
    assert set(pool.distribution(program="fsw").values()) == {0}


def test_distribution_subtotals_and_total_add_up_on_a_random_pool() -> None:
    rng = random.Random(7)
    pool = Pool()
    for n in range(3000):
        score = rng.choice([rng.randint(0, 1200), rng.randint(280, 620), rng.randint(440, 510)])
        pool.upsert(entry(n, score, minutes=rng.randint(0, 10_000), categories={"stem"} if n % 3 else set()))
    for dist, members in ((pool.distribution(), list(pool)), (pool.distribution(category="stem"), None)):
        assert dist["451-500"] == sum(
            dist[b] for b in ("491-500", "481-490", "471-480", "461-470", "451-460")
        )
        assert dist["401-450"] == sum(
            dist[b] for b in ("441-450", "431-440", "421-430", "411-420", "401-410")
        )
        disjoint = ("601-1200", "501-600", "451-500", "401-450", "351-400", "301-350", "0-300")
        assert sum(dist[b] for b in disjoint) == dist["total"]
        if members is not None:
            assert dist["total"] == len(pool) == 3000
            for label, low, high in DISTRIBUTION_BINS:
                assert dist[label] == sum(1 for e in members if low <= e.crs <= high), label
    assert pool.distribution(category="stem")["total"] == 2000


# --- persistence and fingerprint ------------------------------------------------------------------


def _random_entries(count: int, seed: int) -> list[PoolEntry]:
    rng = random.Random(seed)
    programs = sorted(PROGRAMS - {"pnp"})
    categories = sorted(CATEGORIES)
    out = []
    for _ in range(count):
        chosen = set(rng.sample(programs, rng.randint(1, 3)))
        nominated = rng.random() < 0.1
        if nominated:
            chosen.add("pnp")
        out.append(
            PoolEntry(
                str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                rng.randint(300, 600) + (600 if nominated else 0),
                T0 + timedelta(microseconds=rng.randint(0, 10**9)),  # many near-ties, microsecond precision
                frozenset(chosen),
                frozenset(rng.sample(categories, rng.choice([0, 0, 1, 2]))),
            )
        )
    return out


def test_snapshot_rows_round_trip() -> None:
    pool = pool_of(*_random_entries(500, seed=1))
    rows = pool.snapshot_rows()
    assert len(rows) == 500
    assert [row[0] for row in rows] == ids(pool.top(500))  # in pool order
    for row in rows:
        profile_id, crs, submitted_us, programs, categories = row
        assert type(profile_id) is str and type(crs) is int and type(submitted_us) is int
        assert programs == tuple(sorted(programs)) and all(type(code) is str for code in programs)
        assert categories == tuple(sorted(categories))
    restored = Pool.from_rows(rows)
    assert restored == pool
    assert restored.fingerprint() == pool.fingerprint()
    assert restored.snapshot_rows() == rows
    restored.check_consistency()
    for code in PROGRAMS:
        assert restored.top(50, program=code) == pool.top(50, program=code)
    shuffled = list(rows)
    random.Random(3).shuffle(shuffled)
    assert Pool.from_rows(shuffled) == pool
    assert Pool.from_rows([list(row) for row in shuffled]) == pool  # e.g. lists from a database driver


def test_rows_keep_microseconds_exactly() -> None:
    instant = datetime(2038, 1, 19, 3, 14, 7, 999_999, tzinfo=UTC)
    e = PoolEntry(pid(1), 500, instant, frozenset({"fsw"}))
    assert e.to_row() == (pid(1), 500, to_us(instant), ("fsw",), ())
    assert PoolEntry.from_row(e.to_row()).submitted_at == instant
    assert from_us(to_us(instant)) == instant


def test_from_rows_refuses_a_profile_twice() -> None:
    row = entry(1, 500).to_row()
    with pytest.raises(ValueError, match="appears twice"):
        Pool.from_rows([row, row])


def test_fingerprint_is_independent_of_insertion_order_and_sensitive_to_content() -> None:
    entries = _random_entries(300, seed=2)
    forward = pool_of(*entries)
    backward = pool_of(*reversed(entries))
    churned = Pool()  # reaches the same state through removals and score changes
    for e in entries:
        churned.upsert(PoolEntry(e.profile_id, 0, e.submitted_at, frozenset({"fst"})))
    churned.upsert(entry(1, 399))
    churned.remove(pid(1))
    for e in reversed(entries):
        churned.upsert(e)
    assert forward.fingerprint() == backward.fingerprint() == churned.fingerprint()
    assert forward == backward == churned

    first = entries[0]
    changes = [
        PoolEntry(
            first.profile_id, first.crs, first.submitted_at + timedelta(microseconds=1), first.programs
        ),
        PoolEntry(
            first.profile_id, first.crs, first.submitted_at, first.programs, first.categories ^ {"military"}
        ),
        PoolEntry(
            first.profile_id, first.crs, first.submitted_at, first.programs ^ {"pnp"}, first.categories
        ),
    ]
    seen = {forward.fingerprint()}
    for changed in changes:
        other = pool_of(*entries)
        other.upsert(changed)
        assert other != forward
        seen.add(other.fingerprint())
    assert len(seen) == 1 + len(changes)
    assert Pool().fingerprint() != forward.fingerprint()


# --- against a naive model ------------------------------------------------------------------------


def test_random_operations_agree_with_a_naive_model() -> None:
    rng = random.Random(11)
    candidates = _random_entries(400, seed=5)
    pool = Pool()
    model: dict[str, PoolEntry] = {}
    for step in range(3000):
        base = rng.choice(candidates)
        if rng.random() < 0.2:
            assert pool.remove(base.profile_id) == model.pop(base.profile_id, None)
            continue
        variant = rng.choice(candidates)  # a new score / programs / categories for the same candidate
        updated = PoolEntry(
            base.profile_id, variant.crs, base.submitted_at, variant.programs, variant.categories
        )
        assert pool.upsert(updated) == model.get(base.profile_id)
        model[base.profile_id] = updated
        if step % 250 == 0:
            _assert_matches(pool, model, rng)
    _assert_matches(pool, model, rng)
    pool.check_consistency()


def _assert_matches(pool: Pool, model: dict[str, PoolEntry], rng: random.Random) -> None:
    ordered = sorted(model.values(), key=lambda e: (-e.crs, e.submitted_at, e.profile_id))
    assert len(pool) == len(model)
    assert list(pool) == ordered
    filters: list[tuple[str | None, str | None]] = [(None, None)]
    filters += [(code, None) for code in sorted(PROGRAMS)]
    filters += [(None, code) for code in sorted(CATEGORIES)]
    for program, category in filters:
        members = [
            e
            for e in ordered
            if (program is None or program in e.programs) and (category is None or category in e.categories)
        ]
        exclude = {e.profile_id for e in rng.sample(ordered, min(5, len(ordered)))}
        assert pool.top(30, program, category) == members[:30]
        expected = [e for e in members if e.profile_id not in exclude][:30]
        assert pool.top(30, program, category, exclude=exclude) == expected
        for score in (0, 450, 451, 600, 601, 1200):
            assert pool.count_at_or_above(score, program, category) == len(
                [e for e in members if e.crs >= score]
            )
        position = {e.profile_id: i + 1 for i, e in enumerate(members)}
        for e in rng.sample(ordered, min(20, len(ordered))):
            assert pool.rank(e.profile_id, program, category) == position.get(e.profile_id)


# --- the entry ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"profile_id": "not-a-uuid"}, "canonical lowercase UUID"),
        ({"profile_id": pid(0xABCDEF).upper()}, "canonical lowercase UUID"),
        ({"crs": 1201}, "crs must be an int from 0 to 1200"),
        ({"crs": -1}, "crs must be"),
        ({"crs": True}, "crs must be"),
        ({"crs": 450.0}, "crs must be"),
        ({"submitted_at": datetime(2026, 3, 1, 12, 0)}, "timezone-aware"),
        ({"programs": frozenset({"fsw", "ee"})}, "unknown program code"),
        ({"programs": frozenset({"pnp"})}, "at least one of"),
        ({"programs": frozenset()}, "at least one of"),
        ({"categories": frozenset({"fsw"})}, "unknown category code"),
        ({"categories": frozenset({"Stem"})}, "unknown category code"),
    ],
)
def test_entry_validation(kwargs: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {
        "profile_id": pid(1),
        "crs": 450,
        "submitted_at": T0,
        "programs": frozenset({"fsw"}),
        "categories": frozenset(),
    }
    fields.update(kwargs)
    with pytest.raises(ValueError, match=message):
        PoolEntry(**fields)  # type: ignore[arg-type]


def test_program_and_category_sets_and_scores_are_interned() -> None:
    a = PoolEntry(pid(1), 777, T0, frozenset({"fsw", "pnp"}), frozenset({"french", "stem"}))
    b = PoolEntry(pid(2), int("777"), T0, frozenset(["pnp", "fsw"]), frozenset(["stem", "french"]))
    assert a.programs is b.programs
    assert a.categories is b.categories
    assert a.crs is b.crs and a.key[0] is b.key[0]
    pool = pool_of(a)
    same_place = PoolEntry(pid(1), 777, T0, frozenset({"fsw", "pnp"}), frozenset({"french"}))
    pool.upsert(same_place)
    held = pool.get(pid(1))
    assert held == same_place
    assert held is not None and held.key is a.key  # the orderings and the held record share one key tuple
