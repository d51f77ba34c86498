"""What every contract model shares: strict JSON models, UTC times, bounded text, the incident key."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, Strict


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_utc)]
IncidentKey = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$",
        description="The caller's own key, e.g. order-1001-late; the workflow id is incident-<key>.",
    ),
]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _one_line(value: str) -> str:
    # A line break in a name or an id ends up in a mail header or a subject.
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must be a single line: no line breaks or control characters")
    return value


# Free text from people (what happened, needs, reasons): up to 4,000 characters.
Text = Annotated[str, Field(min_length=1, max_length=4000), AfterValidator(_not_blank)]
# A shorter note on a step.
Note = Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(_not_blank)]
# Names, ids and references: one line of up to 200 characters.
Line = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_not_blank), AfterValidator(_one_line)]
ShortLine = Annotated[str, Field(min_length=1, max_length=50), AfterValidator(_not_blank), AfterValidator(_one_line)]
# Whole numbers as JSON integers only: 50.0, "50" and true are refused, never coerced.
Count = Annotated[int, Strict()]


class Contract(BaseModel):
    # Unknown fields are refused so that a misspelt field in a backend's JSON
    # is an error naming it, not silently dropped.
    model_config = ConfigDict(extra="forbid", frozen=False)
