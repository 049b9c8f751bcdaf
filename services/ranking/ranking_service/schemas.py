"""HTTP contracts of the ranking service (request validation and OpenAPI documentation)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from shared.rules.factors import (
    CanadianEducation,
    Clb,
    CrsFactors,
    EducationLevel,
    LanguageAbility,
    SpouseFactors,
)

ClbLevel = Annotated[StrictInt, Field(ge=0, le=12, description="CLB (English) or NCLC (French), 0 to 12")]
Years = Annotated[StrictInt, Field(ge=0, le=80, description="whole years, 0 or more")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- calculator -------------------------------------------------------------------------------------


class ClbIn(_Strict):
    speaking: ClbLevel
    listening: ClbLevel
    reading: ClbLevel
    writing: ClbLevel

    def to_clb(self) -> Clb:
        return Clb(self.speaking, self.listening, self.reading, self.writing)


class LanguageIn(_Strict):
    language: Literal["en", "fr"]
    clb: ClbIn

    def to_ability(self) -> LanguageAbility:
        return LanguageAbility(self.language, self.clb.to_clb())


class SpouseIn(_Strict):
    """An accompanying spouse or partner who is not a Canadian citizen or PR (otherwise send null)."""

    education_level: EducationLevel
    clb: ClbIn | None = None
    canadian_work_years: Years = 0

    def to_factors(self) -> SpouseFactors:
        clb = self.clb.to_clb() if self.clb is not None else None
        return SpouseFactors(self.education_level, clb, self.canadian_work_years)


CALCULATOR_EXAMPLE: dict[str, Any] = {
    "age": 29,
    "education_level": "bachelors",
    "canadian_education": "none",
    "first_language": {"language": "en", "clb": {"speaking": 9, "listening": 9, "reading": 8, "writing": 7}},
    "second_language": None,
    "canadian_work_years": 1,
    "foreign_work_years": 3,
    "certificate_of_qualification": False,
    "provincial_nomination": False,
    "sibling_in_canada": False,
    "spouse": None,
}


class CalculatorRequest(_Strict):
    """CRS factors, already in CRS terms (whole years, CLB levels)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                CALCULATOR_EXAMPLE,
                {
                    **CALCULATOR_EXAMPLE,
                    "second_language": {
                        "language": "fr",
                        "clb": {"speaking": 7, "listening": 7, "reading": 7, "writing": 7},
                    },
                    "spouse": {
                        "education_level": "masters",
                        "clb": {"speaking": 8, "listening": 8, "reading": 8, "writing": 8},
                        "canadian_work_years": 0,
                    },
                },
            ]
        },
    )

    age: Annotated[StrictInt, Field(ge=0, le=130)]
    education_level: EducationLevel = Field(
        description="`masters` covers a master's or an entry-to-practice professional degree; `bachelors` "
        "a bachelor's or any program of 3 years or longer"
    )
    canadian_education: CanadianEducation = Field(
        default=CanadianEducation.NONE,
        description="`three_year_or_longer`: a Canadian credential of 3 years or longer, or a Canadian "
        "master's, professional or doctoral degree of any length",
    )
    first_language: LanguageIn | None = None
    second_language: LanguageIn | None = None
    canadian_work_years: Years = 0
    foreign_work_years: Years = 0
    certificate_of_qualification: StrictBool = False
    provincial_nomination: StrictBool = False
    sibling_in_canada: StrictBool = False
    spouse: SpouseIn | None = None
    arranged_employment: Literal["none", "teer_0_major_00", "other_skilled"] = Field(
        default="none", description="scored only by rules versions before 2025-03-25"
    )

    def to_factors(self) -> CrsFactors:
        return CrsFactors(
            age=self.age,
            education_level=self.education_level,
            canadian_education=self.canadian_education,
            first_language=self.first_language.to_ability() if self.first_language else None,
            second_language=self.second_language.to_ability() if self.second_language else None,
            canadian_work_years=self.canadian_work_years,
            foreign_work_years=self.foreign_work_years,
            certificate_of_qualification=self.certificate_of_qualification,
            provincial_nomination=self.provincial_nomination,
            sibling_in_canada=self.sibling_in_canada,
            spouse=self.spouse.to_factors() if self.spouse else None,
            arranged_employment=self.arranged_employment,
        )


class CalculatorResponse(BaseModel):
    total: int = Field(examples=[470])
    core: int
    spouse: int
    transferability: int
    additional: int
    breakdown: dict[str, int] = Field(description="points counted per factor after every cap; sums to total")
    rules_version: str = Field(examples=["2025-03-25"])


# --- pool -------------------------------------------------------------------------------------------


class CandidateStanding(BaseModel):
    crs: int
    breakdown: dict[str, int]
    rank: int = Field(description="1-based place in the whole pool")
    pool_size: int
    submitted_at: datetime
    programs: list[str]
    categories: list[str]


class DistributionBin(BaseModel):
    range: str = Field(examples=["491-500"])
    count: int


class Distribution(BaseModel):
    as_of: datetime
    rules_version: str
    bins: list[DistributionBin] = Field(
        description="IRCC's published bins in their published order; 451-500 and 401-450 are subtotals"
    )
    total: int


class PoolCandidate(BaseModel):
    profile_id: str
    crs: int
    submitted_at: datetime
    programs: list[str]
    categories: list[str]


class RankedCandidate(PoolCandidate):
    rank: int


class TopAnswer(BaseModel):
    pool_size: int
    eligible_count: int
    position: dict[str, int]
    candidates: list[RankedCandidate]


class SearchItem(PoolCandidate):
    noc_codes: list[str]
    lowest_clb: dict[str, int] = Field(description="lowest CLB/NCLC ability per official language")


class SearchPage(BaseModel):
    items: list[SearchItem]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last")


class SelectionRequest(_Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"program": "cec", "category": None, "size": 3000, "exclude": []}]},
    )

    program: str | None = Field(default=None, description="fsw, cec, fst or pnp; null for any")
    category: str | None = Field(default=None, description="a draw category code; null for none")
    size: Annotated[StrictInt, Field(ge=0, le=1_000_000)]
    exclude: list[str] = Field(default_factory=list, description="profile ids to leave out")


class SelectedCandidate(PoolCandidate):
    owner: str
    citizenship: str


class SelectionAnswer(BaseModel):
    position: dict[str, int] = Field(
        description='the projection position the answer reflects: `{"<topic>:<partition>": next_offset}`'
    )
    pool_size: int
    eligible_count: int = Field(description="candidates eligible for the round, exclusions left out")
    candidates: list[SelectedCandidate] = Field(description="best first: (-crs, submitted_at, profile_id)")


class RulesState(BaseModel):
    active: str = Field(
        description="the version this instance scores with (an activation on another "
        "instance reaches it within moments)"
    )
    revision: int = Field(
        description="the active-rules state's revision (0 before any activation, +1 per "
        "activation); also the `ETag`, to send as `If-Match` to activate"
    )
    versions: list[str]


class ActivationAnswer(BaseModel):
    rules_version: str
    previous: str
    revision: int = Field(description="the active-rules state's new revision (also the `ETag`)")
    rescored: int | None = Field(
        description="profiles of this instance's partitions rescored; null in a "
        "replayed answer whose activation did not finish its rescoring pass"
    )
    changed: int | None = Field(
        description="candidates whose score, programs or categories changed (null as `rescored`)"
    )


class Fingerprint(BaseModel):
    fingerprint: str
    pool_size: int
    rules_version: str
    position: dict[str, int]
