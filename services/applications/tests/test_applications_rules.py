"""Documents, settlement funds, visas and the service standard (pure, no I/O)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from applications_service.domain.documents import (
    DocumentsSubmitted,
    PassportSubmitted,
    ProfileFacts,
    check_documents,
    copr_expiry,
    is_valid_job_offer,
    minimum_settlement_funds,
    required_funds,
)
from applications_service.domain.errors import ApplicationIncomplete
from applications_service.domain.standard import (
    Decided,
    OpenApplication,
    at_risk,
    percentile_nearest_rank,
    service_standard_stats,
    standard_due,
)
from applications_service.domain.visa import (
    VISA_REQUIRED,
    VISA_REQUIRED_COUNTRIES,
    load_visa_required,
    needs_permanent_resident_visa,
)

TODAY = date(2026, 4, 1)
JOB_OFFER = {
    "noc_code": "21231",
    "teer": 1,
    "employer": "Acme",
    "full_time": True,
    "non_seasonal": True,
    "duration_months": None,
    "lmia_or_exempt": True,
    "canadian_armed_forces": False,
}


def complete(**overrides: object) -> DocumentsSubmitted:
    fields: dict[str, object] = {
        "passport": PassportSubmitted("Z1234567", "in", date(2031, 1, 1)),
        "medical_exam_date": date(2026, 3, 10),
        "police_certificates": True,
        "proof_of_funds_cad": 19_001,
    }
    fields.update(overrides)
    return DocumentsSubmitted(**fields)  # type: ignore[arg-type]


def facts(
    programs: tuple[str, ...] = ("fsw",),
    authorized: bool = False,
    job_offer: object = None,
    family_size: int = 1,
) -> ProfileFacts:
    document = {
        "authorized_to_work_in_canada": authorized,
        "job_offer": job_offer,
        "family_size": family_size,
    }
    return ProfileFacts.from_document(document, programs)


# --- settlement funds (crs-rules.md §3.6) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "cad"),
    [
        (1, 15_263),
        (2, 19_001),
        (3, 23_360),
        (4, 28_362),
        (5, 32_168),
        (6, 36_280),
        (7, 40_392),
        (8, 44_504),
        (10, 52_728),
    ],
)
def test_settlement_funds_table(size: int, cad: int) -> None:
    assert minimum_settlement_funds(size, TODAY) == cad


def test_family_size_below_one_is_a_bug() -> None:
    with pytest.raises(ValueError):
        minimum_settlement_funds(0, TODAY)


@pytest.mark.parametrize(
    ("program", "profile", "expected"),
    [
        ("fsw", facts(family_size=2), 19_001),
        ("fst", facts(("fst",), family_size=4), 28_362),
        ("cec", facts(("cec",)), None),
        ("pnp", facts(("cec", "fsw")), None),
        ("pnp", facts(("fsw",), family_size=3), 23_360),
        ("fsw", facts(authorized=True, job_offer=JOB_OFFER), None),
        ("fsw", facts(authorized=False, job_offer=JOB_OFFER), 15_263),
        ("fsw", facts(authorized=True, job_offer=None), 15_263),
        ("fsw", facts(authorized=True, job_offer={**JOB_OFFER, "lmia_or_exempt": False}), 15_263),
        ("fsw", None, 15_263),
        ("cec", None, None),
    ],
)
def test_who_must_prove_funds(program: str, profile: ProfileFacts | None, expected: int | None) -> None:
    assert required_funds(program, profile, TODAY) == expected


@pytest.mark.parametrize(("duration", "valid"), [(None, True), (12, True), (11, False)])
def test_a_valid_job_offer_lasts_at_least_a_year(duration: int | None, valid: bool) -> None:
    assert is_valid_job_offer({**JOB_OFFER, "duration_months": duration}) is valid


def test_a_malformed_job_offer_does_not_qualify() -> None:
    assert not is_valid_job_offer({"employer": "Acme"}) and not is_valid_job_offer("yes")


def test_profile_facts_read_a_document_defensively() -> None:
    read = ProfileFacts.from_document({"family_size": "two"}, ["fsw"])
    assert read == ProfileFacts(("fsw",), False, False, 1)


# --- documents ----------------------------------------------------------------------------------


def test_complete_documents_are_normalised() -> None:
    checked = check_documents(complete(), 19_001, TODAY)
    assert checked.passport_country == "IN" and checked.proof_of_funds_cad == 19_001


def test_nothing_sent_lists_everything_missing() -> None:
    with pytest.raises(ApplicationIncomplete) as rejected:
        check_documents(DocumentsSubmitted(), 15_263, TODAY)
    assert rejected.value.missing == [
        "passport",
        "medical_exam_date",
        "police_certificates",
        "proof_of_funds_cad",
    ]
    assert "Missing: passport, medical_exam_date" in rejected.value.detail


def test_missing_passport_parts_and_no_police_certificates() -> None:
    passport = PassportSubmitted(number="Z1", country=None, expiry=None)
    with pytest.raises(ApplicationIncomplete) as rejected:
        check_documents(complete(passport=passport, police_certificates=False), None, TODAY)
    assert rejected.value.missing == ["passport.country", "passport.expiry", "police_certificates"]


def test_funds_are_optional_where_not_required() -> None:
    assert check_documents(complete(proof_of_funds_cad=None), None, TODAY).proof_of_funds_cad is None


def test_funds_below_the_minimum_are_rejected_with_the_amount() -> None:
    with pytest.raises(ApplicationIncomplete) as rejected:
        check_documents(complete(proof_of_funds_cad=19_000), 19_001, TODAY)
    assert rejected.value.missing == []
    assert [p.field for p in rejected.value.problems] == ["proof_of_funds_cad"]
    assert "19001 CAD" in rejected.value.detail


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"passport": PassportSubmitted("Z1", "IN", TODAY)}, "passport.expiry"),
        ({"medical_exam_date": TODAY + timedelta(days=1)}, "medical_exam_date"),
        ({"medical_exam_date": date(2025, 4, 1)}, "medical_exam_date"),
    ],
)
def test_expired_or_impossible_documents(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(ApplicationIncomplete) as rejected:
        check_documents(complete(**overrides), None, TODAY)
    assert [p.field for p in rejected.value.problems] == [field]


def test_copr_expiry_takes_the_earlier_date() -> None:
    assert copr_expiry(date(2026, 3, 10), date(2031, 1, 1)) == date(2027, 3, 10)
    assert copr_expiry(date(2026, 3, 10), date(2026, 9, 1)) == date(2026, 9, 1)
    assert copr_expiry(date(2026, 3, 10), date(2027, 3, 10)) == date(2027, 3, 10)


# --- visas ----------------------------------------------------------------------------------------


def test_visa_required_countries_are_iso_alpha_2() -> None:
    assert all(len(code) == 2 and code.isupper() for code in VISA_REQUIRED_COUNTRIES)
    assert needs_permanent_resident_visa("in") and needs_permanent_resident_visa("CN")
    assert not any(needs_permanent_resident_visa(c) for c in ("US", "GB", "FR", "AU", "JP", "CA"))


# --- the service standard -------------------------------------------------------------------------

T0 = datetime(2026, 1, 15, 12, tzinfo=UTC)


def decided_after(days: float) -> Decided:
    return Decided(T0, T0 + timedelta(days=days))


def test_six_months_are_calendar_months() -> None:
    assert standard_due(T0) == datetime(2026, 7, 15, 12, tzinfo=UTC)
    assert standard_due(datetime(2026, 8, 31, tzinfo=UTC)) == datetime(2027, 2, 28, tzinfo=UTC)


def test_nearest_rank_percentile() -> None:
    assert percentile_nearest_rank([5, 1, 4, 2, 3], 0.8) == 4
    assert percentile_nearest_rank([10], 0.8) == 10
    assert percentile_nearest_rank([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.8) == 8
    with pytest.raises(ValueError):
        percentile_nearest_rank([], 0.8)


def test_stats_median_p80_and_share_within_six_months() -> None:
    # 181 days after 15 January is 15 July (exactly six months): within; 182 days is not.
    decided = [decided_after(d) for d in (30, 60, 90, 120, 181, 182, 200, 45, 75, 100)]
    stats = service_standard_stats({"applied": 3, "copr_issued": 7, "refused": 3}, decided)
    assert stats.decided == 10
    assert stats.median_days_to_decision == 95.0  # (90 + 100) / 2
    assert stats.p80_days_to_decision == 181.0  # 8th of 10 sorted
    assert stats.decided_within_standard == 8 and stats.share_within_standard == 0.8 and stats.standard_met
    assert list(stats.counts_by_state) == ["applied", "copr_issued", "refused"]


def test_stats_without_decisions() -> None:
    stats = service_standard_stats({"open": 2}, [])
    assert (stats.median_days_to_decision, stats.p80_days_to_decision, stats.share_within_standard) == (
        None,
        None,
        None,
    )
    assert stats.standard_met is None


def test_standard_not_met_below_eighty_percent() -> None:
    stats = service_standard_stats({}, [decided_after(10), decided_after(190), decided_after(200)])
    assert stats.share_within_standard == 0.3333 and stats.standard_met is False


def test_at_risk_queue_is_oldest_first_within_thirty_days_of_the_standard() -> None:
    now = datetime(2026, 7, 1, tzinfo=UTC)
    apps = [
        OpenApplication("a-new", "i1", "p1", datetime(2026, 6, 1, tzinfo=UTC)),  # due 2026-12-01: fine
        OpenApplication("a-edge", "i2", "p2", datetime(2026, 1, 31, tzinfo=UTC)),  # due 07-31: 30 days left
        OpenApplication("a-late", "i3", "p3", datetime(2025, 12, 1, tzinfo=UTC)),  # due 06-01: missed
        OpenApplication("a-out", "i4", "p4", datetime(2026, 2, 1, 0, 0, 1, tzinfo=UTC)),  # due 08-01: 31 days
        OpenApplication("a-soon", "i5", "p5", datetime(2026, 1, 20, tzinfo=UTC)),  # due 07-20
    ]
    queue = at_risk(apps, now)
    assert [r.application.application_id for r in queue] == ["a-late", "a-soon", "a-edge"]
    assert queue[0].already_missed and queue[0].days_left == -30.0
    assert queue[2].days_left == 30.0 and not queue[2].already_missed


def test_the_visa_required_list_is_a_data_file_with_its_source_and_date() -> None:
    assert VISA_REQUIRED.source.startswith("IRCC, Entry requirements by country or territory: https://")
    assert VISA_REQUIRED.as_of == date(2026, 11, 25)
    assert VISA_REQUIRED.countries["IN"] == "India" and len(VISA_REQUIRED.countries) == 145
    # The code names no country: replacing the data replaces the list.
    other = load_visa_required('{"source": "s", "as_of": "2027-01-01", "countries": {"FR": "France"}}')
    assert "FR" in other and "IN" not in other


def test_a_bad_visa_list_is_refused() -> None:
    with pytest.raises(ValueError, match="ISO alpha-2"):
        load_visa_required('{"source": "s", "as_of": "2027-01-01", "countries": {"india": "India"}}')
