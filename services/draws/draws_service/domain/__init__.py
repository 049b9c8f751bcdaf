"""The rules of rounds of invitations, as pure Python: no framework, database or broker imports."""

from draws_service.domain.model import (
    CATEGORIES,
    GENERAL,
    ITA_VALIDITY,
    MAX_ROUND_SIZE,
    PROGRAM_PRIORITY,
    PROGRAMS,
    Candidate,
    InvalidRound,
    Invitation,
    RoundKind,
    RoundType,
    check_size,
)
from draws_service.domain.record import RoundRecord, published_timestamp, round_name
from draws_service.domain.rounds import Round, hold
from draws_service.domain.selection import SCORE_BINS, Selection, issue_invitations, select

__all__ = [
    "CATEGORIES",
    "GENERAL",
    "ITA_VALIDITY",
    "MAX_ROUND_SIZE",
    "PROGRAMS",
    "PROGRAM_PRIORITY",
    "SCORE_BINS",
    "Candidate",
    "InvalidRound",
    "Invitation",
    "Round",
    "RoundKind",
    "RoundRecord",
    "RoundType",
    "Selection",
    "check_size",
    "hold",
    "issue_invitations",
    "published_timestamp",
    "round_name",
    "select",
]
