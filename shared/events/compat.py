"""Schema compatibility of the event catalogue with what was published before.

`shared/events/schemas.json` holds the JSON Schema of the `data` of every event type and version ever
published (`ee.profile.ProfileUpdated.v1` -> schema). The check, run by `make test`
(shared/tests/test_event_compat.py), says what is wrong when the catalogue changes an event in a way a
consumer of the recorded schema, or a reader of old messages, would break on:

- a version whose schema changed must stay backward compatible with its recorded one: no field
  removed (the models forbid unknown fields, so old messages would fail), none retyped or narrowed
  (a type may only widen, e.g. gain `null`), no new required field (old messages lack it);
- otherwise the event gets a new version, and every older recorded version needs an upcaster in the
  registry (`REGISTRY.register_upcaster("ee.x.Y.v1", fn)`), so old messages are still read;
- an event type once published stays in the catalogue.

    python -m shared.events.compat check     # exit 1 and the reasons when incompatible
    python -m shared.events.compat update    # record the current schemas (refuses incompatible ones)
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from shared.events.catalogue import Event
from shared.events.registry import REGISTRY, EventRegistry

SNAPSHOT_PATH: Final = Path(__file__).resolve().parent / "schemas.json"

Schema = dict[str, Any]


def data_schema(event: type[Event]) -> Schema:
    """The JSON Schema of an event's data, as the catalogue model validates it."""
    return event.model_json_schema(mode="validation")


def current_schemas(events: Iterable[type[Event]]) -> dict[str, Schema]:
    return {event.event_type(): data_schema(event) for event in events}


def _family(event_type: str) -> tuple[str, int]:
    family, _, version = event_type.rpartition(".v")
    return family, int(version)


def _resolve(schema: Schema, root: Schema) -> Schema:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _resolve(root.get("$defs", {}).get(ref.removeprefix("#/$defs/"), {}), root)
    return schema


def _shapes(schema: Schema, root: Schema) -> set[str]:
    """The set of value shapes a property schema accepts, e.g. {"string:date-time", "null"}."""
    schema = _resolve(schema, root)
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if alternatives:
        return set().union(*(_shapes(s, root) for s in alternatives))
    kind = schema.get("type")
    if kind is None:
        return {"any"}
    kinds = kind if isinstance(kind, list) else [kind]
    shapes = set()
    for k in kinds:
        if k == "string" and "format" in schema:
            shapes.add(f"string:{schema['format']}")
        elif k == "array":
            items = sorted(_shapes(schema.get("items", {}), root))
            shapes.add(f"array<{'|'.join(items)}>")
        elif k == "object" and isinstance(schema.get("additionalProperties"), dict):
            values = sorted(_shapes(schema["additionalProperties"], root))
            shapes.add(f"object<{'|'.join(values)}>")
        else:
            shapes.add(str(k))
    return shapes


def _widens(old: set[str], new: set[str]) -> bool:
    """Whether every value old accepted, new accepts (an integer is also a number; any takes all)."""
    if "any" in new:
        return True
    return all(shape in new or (shape == "integer" and "number" in new) for shape in old)


def incompatibilities(event_type: str, old: Schema, new: Schema) -> list[str]:
    """Why data valid under `old` would not be read under `new` (empty when compatible)."""
    problems: list[str] = []
    old_props: Mapping[str, Schema] = old.get("properties", {})
    new_props: Mapping[str, Schema] = new.get("properties", {})
    old_required, new_required = set(old.get("required", [])), set(new.get("required", []))
    for name, old_prop in old_props.items():
        required = "required " if name in old_required else ""
        if name not in new_props:
            problems.append(f"{event_type}: the {required}field `{name}` was removed")
            continue
        before, after = _shapes(old_prop, old), _shapes(new_props[name], new)
        if not _widens(before, after):
            problems.append(
                f"{event_type}: the {required}field `{name}` changed type from "
                f"{' | '.join(sorted(before))} to {' | '.join(sorted(after))}"
            )
    for name in sorted(new_required - old_required):
        if name in old_props:
            problems.append(f"{event_type}: the field `{name}` became required")
        else:
            problems.append(f"{event_type}: the new field `{name}` is required (old messages lack it)")
    if old.get("additionalProperties") is not False and new.get("additionalProperties") is False:
        problems.append(f"{event_type}: unknown fields are now refused")
    return problems


def check(
    recorded: Mapping[str, Schema],
    events: Iterable[type[Event]],
    registry: EventRegistry = REGISTRY,
) -> list[str]:
    """Everything that makes the catalogue incompatible with the recorded schemas."""
    current = {event.event_type(): event for event in events}
    versions: dict[str, int] = {}
    for event_type in current:
        family, version = _family(event_type)
        versions[family] = version
    problems: list[str] = []
    for event_type, old in sorted(recorded.items()):
        family, version = _family(event_type)
        if family not in versions:
            problems.append(
                f"{event_type}: the event type is no longer in the catalogue; published events "
                "must stay readable (keep it, or deprecate it with a new version)"
            )
        elif version == versions[family]:
            problems += incompatibilities(event_type, old, data_schema(current[event_type]))
        elif version > versions[family]:
            problems.append(
                f"{event_type}: recorded, but the catalogue's {family} is only v{versions[family]}"
            )
        else:
            for step in range(version, versions[family]):
                if not registry.has_upcaster(f"{family}.v{step}"):
                    problems.append(
                        f"{family}.v{step}: no upcaster to v{step + 1}, so messages of the recorded "
                        f"{event_type} could no longer be read; register one with "
                        f"REGISTRY.register_upcaster('{family}.v{step}', fn)"
                    )
    return sorted(set(problems))


def not_recorded(recorded: Mapping[str, Schema], events: Iterable[type[Event]]) -> list[str]:
    """Current event types whose schema is not the recorded one (a compatible change is recorded too,
    so the next change is checked against what was last published)."""
    return sorted(t for t, schema in current_schemas(events).items() if recorded.get(t) != schema)


def load_snapshot(path: Path = SNAPSHOT_PATH) -> dict[str, Schema]:
    if not path.exists():
        return {}
    loaded: dict[str, Schema] = json.loads(path.read_text())
    return loaded


def updated_snapshot(recorded: Mapping[str, Schema], events: Iterable[type[Event]]) -> dict[str, Schema]:
    """The recorded schemas plus the catalogue's current ones (older versions are kept)."""
    merged = dict(recorded)
    merged.update(current_schemas(events))
    return dict(sorted(merged.items()))


def render(snapshot: Mapping[str, Schema]) -> str:
    return json.dumps(snapshot, indent=1, sort_keys=True) + "\n"


def main(argv: list[str], registry: EventRegistry = REGISTRY) -> int:
    command = argv[0] if argv else "check"
    recorded = load_snapshot()
    events = registry.current()
    problems = check(recorded, events, registry)
    if command not in ("check", "update"):
        print("usage: python -m shared.events.compat check|update", file=sys.stderr)
        return 2
    if problems:
        print("the event catalogue is not compatible with the published schemas:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        print(
            "make the change backward compatible, or give the event a new version with an upcaster "
            "from the previous one",
            file=sys.stderr,
        )
        return 1
    if command == "update":
        SNAPSHOT_PATH.write_text(render(updated_snapshot(recorded, events)))
        print(f"recorded {len(events)} event schemas in {SNAPSHOT_PATH}")
        return 0
    stale = not_recorded(recorded, events)
    if stale:
        print(f"not recorded as they are now (run `make event-schemas`): {', '.join(stale)}", file=sys.stderr)
        return 1
    print(f"{len(recorded)} recorded event schemas; the catalogue is compatible with them")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
