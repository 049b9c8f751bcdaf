"""The projection table in PostgreSQL: locked reads and one-statement batch upserts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime
from typing import Any, Final

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ranking_service.adapters.tables import ranking_rules
from ranking_service.application.ports import RulesRow, Slots, StoredStanding
from ranking_service.domain.candidate import (
    CandidateRow,
    InvitationState,
    ProfileFacts,
    Reason,
    Standing,
    Status,
)
from ranking_service.domain.pool import PoolRow
from ranking_service.domain.scoring import Scored
from ranking_service.domain.view import CandidateInfo
from shared.cooperative import in_slices
from shared.db import Transaction, consumer_positions, driver_connection
from shared.leadership import advisory_key
from shared.tracked import TrackedDict

# (column, PostgreSQL array type of the unnest parameter, whether it holds JSON text)
_COLUMNS: Final = (
    ("profile_id", "text", False),
    ("owner", "text", False),
    ("version", "int", False),
    ("document", "text", True),
    ("status", "text", False),
    ("submitted_at", "timestamptz", False),
    ("expires_at", "timestamptz", False),
    ("nominated", "boolean", False),
    ("province", "text", False),
    ("invitations", "text", True),
    ("in_pool", "boolean", False),
    ("reason", "text", False),
    ("crs", "int", False),
    ("breakdown", "text", True),
    ("rules_version", "text", False),
    ("programs", "text", True),
    ("categories", "text", True),
    ("noc_codes", "text", True),
    ("lowest_clb", "text", True),
    ("citizenship", "text", False),
    ("scored_on", "date", False),
    ("rescore_on", "date", False),
    ("basis_version", "int", False),
    ("rescore_at", "timestamptz", False),
    ("revision", "bigint", False),
)
_NAMES: Final = [name for name, _, _ in _COLUMNS]
COPY_COLUMNS: Final = [*_NAMES, "updated_at"]


# The consumer's statements of every batch (the rules lock, the locked read and the upsert) go to
# asyncpg on the unit of work's connection (numbered parameters), without SQLAlchemy's statement path.
def _upsert_sql() -> str:
    params = ", ".join(f"${n}::{kind}[]" for n, (_, kind, _) in enumerate(_COLUMNS, start=1))
    selected = ", ".join(f"u.{name}" for name in _NAMES)
    updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in _NAMES if name != "profile_id")
    return (
        f"INSERT INTO ranking_profiles ({', '.join(_NAMES)}, updated_at) "
        f"SELECT {selected}, ${len(_COLUMNS) + 1} FROM unnest({params}) AS u({', '.join(_NAMES)}) "
        f"ON CONFLICT (profile_id) DO UPDATE SET {updates}, updated_at = EXCLUDED.updated_at"
    )


def _lock_sql() -> str:
    columns = ", ".join(_NAMES)
    # One lock order for every writer (sorted ids): no deadlocks.
    return (
        f"SELECT {columns} FROM ranking_profiles WHERE profile_id = ANY($1::text[]) "
        "ORDER BY profile_id FOR UPDATE"
    )


_UPSERT: Final = _upsert_sql()
_LOCK: Final = _lock_sql()
_JSON_COLUMNS: Final = frozenset(name for name, _, is_json in _COLUMNS if is_json)
"""Columns of JSON text (migration 0004: text, not jsonb), decoded here with orjson."""
# The five JSON values a pool entry needs, as one JSON array decoded in one call (a row out of the
# pool may lack them: null).
_POOL_JSON: Final = ("programs", "categories", "breakdown", "noc_codes", "lowest_clb")
_DETAILS: Final = (
    "'[' || " + " || ',' || ".join(f"coalesce({c}, 'null')" for c in _POOL_JSON) + " || ']' AS details"
)
POOL_READ_CHUNK: Final = 20_000

RULES_LOCK: Final = advisory_key("ranking-rules")
"""Scoring passes hold it shared for their transaction; an activation takes it exclusively, so a pass
scores with the rules committed before it began, and nothing scored with the old rules commits after
the activation (whose sweeps then find every row they must rescore)."""

_SCORING_RULES: Final = (
    "SELECT pg_advisory_xact_lock_shared($1), (SELECT version FROM ranking_rules WHERE id = 1)"
)
_SLOT: Final = "((hashtext(profile_id) & 2147483647) % :slots_of)"
"""A profile's rescoring slot (PostgreSQL's own hash of its id modulo the profile topic's partition
count): the instance owning that partition of the profile topic rescores it."""


def _in_slots(slots: Slots | None) -> tuple[str, dict[str, Any]]:
    if slots is None:
        return "TRUE", {}
    owned, count = slots
    return f"{_SLOT} = ANY(:owned_slots)", {"slots_of": count, "owned_slots": sorted(owned)}


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


class SqlProjectionStore:
    """`ProjectionStore` in the caller's transaction: a unit of work's `Transaction` (an ORM session
    on its connection made only if a query needs one) or a session."""

    def __init__(self, source: AsyncSession | Transaction) -> None:
        self._source = source

    @property
    def session(self) -> AsyncSession:
        source = self._source
        return source.session if isinstance(source, Transaction) else source

    async def lock(self, profile_ids: Sequence[str]) -> dict[str, CandidateRow]:
        if not profile_ids:
            return {}
        connection = await driver_connection(self._source)
        rows = await connection.fetch(_LOCK, sorted(profile_ids))
        # Decoded in slices, so this step has a budget too: a row's document and details take ~22 µs
        # (64 rows: 1.4 ms of CPU, warm), and a young collection landing in them made it one of the
        # longest stretches `bench.loop_stretches` saw (up to 4.7 ms).
        return {row["profile_id"]: _candidate(_decoded(row)) async for row in in_slices(rows)}

    async def save(self, rows: Sequence[CandidateRow], now: datetime) -> None:
        if not rows:
            return
        columns: dict[str, list[Any]] = {name: [] for name in _NAMES}
        for row in rows:
            for name, value in _values(row).items():
                columns[name].append(value)
        connection = await driver_connection(self._source)
        await connection.execute(_UPSERT, *(columns[name] for name in _NAMES), now)

    async def scoring_rules(self) -> str | None:
        connection = await driver_connection(self._source)
        row = await connection.fetchrow(_SCORING_RULES, RULES_LOCK)
        version: str | None = row[1]
        return version

    async def due(self, now: datetime, limit: int, slots: Slots | None = None) -> list[str]:
        where, params = _in_slots(slots)
        query = sa.text(
            f"SELECT profile_id FROM ranking_profiles WHERE rescore_at <= :now AND {where} "
            "ORDER BY rescore_at LIMIT :limit"
        )
        return list((await self.session.execute(query, {"now": now, "limit": limit, **params})).scalars())

    async def scored_with_other_rules(
        self, rules_version: str, after: str, limit: int, slots: Slots | None = None
    ) -> list[str]:
        where, params = _in_slots(slots)
        query = sa.text(
            "SELECT profile_id FROM ranking_profiles WHERE rescore_at IS NOT NULL "
            f"AND rules_version IS DISTINCT FROM :rules AND profile_id > :after AND {where} "
            "ORDER BY profile_id LIMIT :limit"
        )
        values = {"rules": rules_version, "after": after, "limit": limit, **params}
        return list((await self.session.execute(query, values)).scalars())

    async def active_rules(self) -> str | None:
        query = sa.select(ranking_rules.c.version).where(ranking_rules.c.id == 1)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def rules_state(self) -> RulesRow:
        query = sa.select(ranking_rules.c.version, ranking_rules.c.revision).where(ranking_rules.c.id == 1)
        row = (await self.session.execute(query)).one_or_none()
        return RulesRow(None, 0) if row is None else RulesRow(row.version, int(row.revision))

    async def lock_rules(self) -> RulesRow:
        await self.session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": RULES_LOCK})
        return await self.rules_state()

    async def set_active_rules(self, rules_version: str, now: datetime) -> int:
        await self.lock_rules()  # (re-entrant: a caller that checked the revision holds it already)
        stmt = sa.dialects.postgresql.insert(ranking_rules).values(
            id=1, version=rules_version, activated_at=now, revision=1
        )
        upsert = stmt.on_conflict_do_update(
            index_elements=["id"],
            set_={"version": rules_version, "activated_at": now, "revision": ranking_rules.c.revision + 1},
        ).returning(ranking_rules.c.revision)
        return int((await self.session.execute(upsert)).scalar_one())

    async def pool_rows(self) -> AsyncIterator[tuple[PoolRow, CandidateInfo]]:
        # Read in big partitions (not a greenlet switch per row), the submission instant as exact
        # microseconds, and the five JSON values as one text (`_DETAILS`).
        query = sa.text(
            "SELECT profile_id, crs, (extract(epoch FROM submitted_at) * 1000000)::bigint AS submitted_us, "
            "owner, citizenship, revision, "
            f"{_DETAILS} FROM ranking_profiles WHERE in_pool"
        ).execution_options(yield_per=POOL_READ_CHUNK)
        result = await self.session.stream(query)
        async for partition in result.partitions():
            for row in partition:
                yield _pool_row(row)

    async def standings(self, profile_ids: Sequence[str]) -> list[StoredStanding]:
        if not profile_ids:
            return []
        query = sa.text(
            "SELECT profile_id, in_pool, revision, crs, "
            "(extract(epoch FROM submitted_at) * 1000000)::bigint AS submitted_us, owner, citizenship, "
            f"{_DETAILS} FROM ranking_profiles WHERE profile_id = ANY(:ids)"
        )
        found = []
        for (
            profile_id,
            in_pool,
            revision,
            crs,
            submitted_us,
            owner,
            citizenship,
            details,
        ) in await self.session.execute(query, {"ids": list(profile_ids)}):
            if in_pool:
                row, info = _pool_row((profile_id, crs, submitted_us, owner, citizenship, revision, details))
                found.append(StoredStanding(profile_id, revision, row, info))
            else:
                found.append(StoredStanding(profile_id, revision, None, None))
        return found

    async def positions(self, consumer: str) -> dict[str, int]:
        table = consumer_positions.c
        query = sa.select(table.topic, table.partition, table.next_offset).where(table.consumer == consumer)
        return {
            f"{topic}:{partition}": int(offset)
            for topic, partition, offset in await self.session.execute(query)
        }


# --- rows <-> domain -------------------------------------------------------------------------------


def copy_record(row: CandidateRow, now: datetime, document_json: str | None) -> tuple[Any, ...]:
    """The row as a COPY record in `COPY_COLUMNS` order (a fresh table: nothing to update).

    `document_json` is the document already encoded (`orjson.dumps(row.facts.document).decode()`).
    """
    return (*_record(row, document_json), now)


def _values(row: CandidateRow) -> dict[str, Any]:
    """The row's columns by name (the upsert's parameters), its document encoded here."""
    return dict(zip(_NAMES, _record(row, _json(row.facts.document)), strict=True))


def _record(row: CandidateRow, document_json: str | None) -> tuple[Any, ...]:
    """The row's columns in `_NAMES` order: the one place that maps a row to the table. Built straight
    into a tuple, the few program, category and NOC lists' JSON remembered: a rebuild makes one per
    profile, and a dict in between plus encoding the same lists again for each row cost about half
    of it."""
    facts, standing = row.facts, row.standing
    scored, reason, invitations = standing.scored, standing.reason, facts.invitations
    if scored is None:
        score: tuple[Any, ...] = _NO_SCORE
    else:
        score = (
            scored.crs,
            _json(scored.breakdown),
            scored.rules_version,
            _json_tuple(scored.programs),
            _json_tuple(scored.categories),
            _json_tuple(scored.noc_codes),
            _json(scored.lowest_clb),
            scored.citizenship,
        )
    return (
        facts.profile_id,
        facts.owner,
        facts.version,
        document_json,
        facts.status.value,
        facts.submitted_at,
        facts.expires_at,
        facts.nominated,
        facts.province,
        _json({key: state.value for key, state in invitations.items()}) if invitations else "{}",
        standing.in_pool,
        None if reason is None else reason.value,
        *score,
        standing.scored_on,
        None if scored is None else scored.rescore_on,
        standing.basis_version,
        standing.rescore_at,
        row.revision,
    )


_NO_SCORE: Final = (None,) * 8  # the score's columns before `scored_on` (crs .. citizenship), unscored
_TUPLE_TEXTS: TrackedDict[tuple[str, ...], str] = TrackedDict()


def _json_tuple(values: tuple[str, ...]) -> str:
    """`_json(list(values))`, remembered: the same few lists come back row after row."""
    text = _TUPLE_TEXTS.get(values)
    if text is None:
        if len(_TUPLE_TEXTS) >= 10_000:
            _TUPLE_TEXTS.clear()
        text = _TUPLE_TEXTS[values] = orjson.dumps(list(values)).decode()
    return text


def _decoded(record: Any) -> dict[str, Any]:
    """A locked row by column, its JSON columns (read as text) decoded."""
    return {
        name: orjson.loads(value) if name in _JSON_COLUMNS and value is not None else value
        for name, value in record.items()
    }


def _candidate(row: Any) -> CandidateRow:
    facts = ProfileFacts(
        profile_id=row["profile_id"],
        owner=row["owner"],
        version=row["version"],
        document=row["document"],
        status=Status(row["status"]),
        submitted_at=row["submitted_at"],
        expires_at=row["expires_at"],
        nominated=row["nominated"],
        province=row["province"],
        invitations={key: InvitationState(state) for key, state in (row["invitations"] or {}).items()},
    )
    standing = Standing(
        in_pool=row["in_pool"],
        reason=None if row["reason"] is None else Reason(row["reason"]),
        scored=_scored(row),
        scored_on=row["scored_on"],
        basis_version=row["basis_version"],
        rescore_at=row["rescore_at"],
    )
    return CandidateRow(facts, standing, row["revision"])


def _scored(row: Any) -> Scored | None:
    if row["crs"] is None:
        return None
    rescore_on: date = row["rescore_on"]
    return Scored(
        crs=row["crs"],
        breakdown=dict(row["breakdown"]),
        rules_version=row["rules_version"],
        programs=tuple(row["programs"]),
        categories=tuple(row["categories"]),
        noc_codes=tuple(row["noc_codes"]),
        lowest_clb=dict(row["lowest_clb"]),
        citizenship=row["citizenship"] or "",
        rescore_on=rescore_on,
    )


def _pool_row(row: Any) -> tuple[PoolRow, CandidateInfo]:
    profile_id, crs, submitted_us, owner, citizenship, revision, details = row
    programs, categories, breakdown, noc_codes, lowest_clb = orjson.loads(details)
    pool_row: PoolRow = (profile_id, crs, submitted_us, tuple(programs), tuple(categories))
    info = CandidateInfo.of(owner, citizenship or "", breakdown, noc_codes, lowest_clb, revision)
    return pool_row, info
