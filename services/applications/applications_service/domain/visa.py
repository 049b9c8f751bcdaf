"""Countries whose nationals need a visa to travel to Canada, and so get a permanent resident visa
(a counterfoil in the passport) with their COPR (crs-rules.md §7).

The list is data, not code: `data/visa_required_countries.json` in this package, with its source
(IRCC's "Entry requirements by country or territory") and the day it was taken from it. Change it in
a reviewed commit when IRCC changes the list; nothing in the code names a country.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from importlib import resources
from types import MappingProxyType
from typing import Final

DATA_FILE: Final = "data/visa_required_countries.json"


@dataclass(frozen=True, slots=True)
class VisaRequiredList:
    countries: MappingProxyType[str, str]  # ISO alpha-2 code -> name
    source: str
    as_of: date

    def __contains__(self, country: object) -> bool:
        return isinstance(country, str) and country.upper() in self.countries


def load_visa_required(text: str) -> VisaRequiredList:
    data = json.loads(text)
    countries = data["countries"]
    if not all(isinstance(code, str) and len(code) == 2 and code.isupper() for code in countries):
        raise ValueError(f"{DATA_FILE}: every country is an upper-case ISO alpha-2 code")
    return VisaRequiredList(
        countries=MappingProxyType(dict(countries)),
        source=data["source"],
        as_of=date.fromisoformat(data["as_of"]),
    )


VISA_REQUIRED: Final = load_visa_required(
    resources.files("applications_service").joinpath(DATA_FILE).read_text(encoding="utf-8")
)
VISA_REQUIRED_COUNTRIES: Final[frozenset[str]] = frozenset(VISA_REQUIRED.countries)


def needs_permanent_resident_visa(country: str) -> bool:
    """True when a national of `country` (ISO alpha-2) travels on a permanent resident visa."""
    return country in VISA_REQUIRED
