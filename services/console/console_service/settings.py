"""The console's settings, from the environment.

| variable | default | meaning |
|---|---|---|
| `EE_ENV` | `development` | `production` refuses the development secret and has no development sign-in |
| `EE_AUTH_SECRET` | the development secret | verifies the ops tokens people sign in with |
| `EE_PORT_BASE` | 8000 | each service of `deploy/services.conf` is at base + its offset |
| `EE_CONSOLE_UPSTREAMS` | 127.0.0.1:base+offset | `name=url,...`, e.g. `draws=http://draws:8003` |
| `EE_CONSOLE_IRCC_DATA` | `bench/data` of the checkout | where IRCC's published pool distribution CSV is |
| `EE_CONSOLE_REFRESH_S` | 10 | how often the health panel refreshes itself |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Final

from shared.auth import check_auth_secret
from shared.gateway import load_table

ROOT: Final = Path(__file__).resolve().parents[3]
OFFSETS: Final = {entry.name: entry.offset for entry in load_table() if entry.name != "console"}
SERVICES: Final = tuple(OFFSETS)
"""The services the console reads: those of deploy/services.conf, in the table's order."""


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    service_name: ClassVar[str] = "console"
    default_port: ClassVar[int] = 8006

    env: str = "development"
    auth_secret: str = field(default="", repr=False)
    service_urls: Mapping[str, str] = field(default_factory=dict)
    ircc_data_dir: Path = ROOT / "bench" / "data"
    refresh_s: int = 10
    upstream_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "auth_secret", check_auth_secret(self.auth_secret or None, self.env))
        urls = {name: default_url(name) for name in SERVICES}
        urls.update(self.service_urls)
        object.__setattr__(self, "service_urls", urls)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ConsoleSettings:
        environ = os.environ if environ is None else environ
        base = int(environ.get("EE_PORT_BASE") or 8000)
        urls = {name: default_url(name, base) for name in SERVICES}
        for pair in (environ.get("EE_CONSOLE_UPSTREAMS") or "").split(","):
            name, _, url = pair.strip().partition("=")
            if not pair.strip():
                continue
            if name not in OFFSETS or not url.startswith(("http://", "https://")):
                raise ValueError(
                    f"EE_CONSOLE_UPSTREAMS: {pair.strip()!r} must be <service>=<http(s) URL>, with a service "
                    f"of deploy/services.conf ({', '.join(SERVICES)})"
                )
            urls[name] = url.rstrip("/")
        data = environ.get("EE_CONSOLE_IRCC_DATA")
        return cls(
            env=environ.get("EE_ENV") or "development",
            auth_secret=environ.get("EE_AUTH_SECRET") or "",
            service_urls=urls,
            ircc_data_dir=Path(data) if data else ROOT / "bench" / "data",
            refresh_s=int(environ.get("EE_CONSOLE_REFRESH_S") or 10),
        )


def default_url(service: str, base: int = 8000) -> str:
    return f"http://127.0.0.1:{base + OFFSETS[service]}"
