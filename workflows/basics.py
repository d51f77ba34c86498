"""What every contract model shares: strict JSON models, UTC times, bounded text, the incident key."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field


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
Text = Annotated[str, Field(min_length=1, max_length=4000)]


class Contract(BaseModel):
    # Unknown fields are refused so that a misspelt field in a backend's JSON
    # is an error naming it, not silently dropped.
    model_config = ConfigDict(extra="forbid", frozen=False)
