"""Program codes (crs-rules.md §3 and §4): the one place every service takes them from."""

from __future__ import annotations

from typing import Final

FEDERAL_PROGRAMS: Final = ("fsw", "cec", "fst")
"""The federal programs of Express Entry; a candidate stands in the pool while eligible for one."""
NOMINATION: Final = "pnp"
"""Not a program of its own: "holds a provincial nomination" (600 points, and PNP rounds)."""
PROGRAMS: Final = (*FEDERAL_PROGRAMS, NOMINATION)
PROGRAM_PRIORITY: Final = ("pnp", "cec", "fsw", "fst")
"""The program a candidate is invited under when eligible for several: PNP > CEC > FSWP > FSTP (§4)."""
PROGRAM_ABBREVIATIONS: Final = {"fsw": "FSWP", "cec": "CEC", "fst": "FSTP", "pnp": "PNP"}
