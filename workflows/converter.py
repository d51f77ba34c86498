"""amends' data converter: ``pydantic_data_converter`` that explains bad input, and heals from bad output.

Payloads stay plain JSON through pydantic, exactly as
``temporalio.contrib.pydantic`` writes and reads them. Two changes:

- When a caller's JSON does not fit a contract (an open, an update's
  argument), the SDK would report just "Failed decoding arguments"; here the
  caller gets each field and the rule it broke in plain words (for example
  ``by.role: Input should be 'agent', 'manager', …``), as a non-retryable
  ``InvalidInput`` failure. For an update that is a rejection, so nothing is
  written to history.
- Any other payload that fails to decode inside a workflow (an activity's
  result during a rolling deploy, say) fails the workflow *task*, which
  retries, so that the incident continues once a corrected worker runs,
  instead of failing the incident for good.

``data_converter`` is that conversion alone: what a payload means. What
leaves the process is sealed on top of it (``encrypted_converter``,
``workflows.codec``): every payload, and every failure's message and stack
trace (moved into its encoded attributes so that the codec seals them too).
Clients, workers and the CLI get the sealed one from ``worker.config.connect``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Self

from pydantic import ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
    SerializationContext,
    WithSerializationContext,
    WorkflowSerializationContext,
)
from temporalio.exceptions import ApplicationError

from workflows.codec import EncryptionCodec, KeyRing


def _internal(part: str) -> bool:
    # pydantic names its validators and union members in the location
    # ("function-after[...]", "IncidentReport"); a caller needs the path of
    # field names and list positions only.
    return "[" in part or part[:1].isupper()


def _field(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if isinstance(p, int) or not _internal(p)]
    return ".".join(parts) or "input"


def explain(err: ValidationError) -> str:
    errors = err.errors(include_url=False)
    # A union (the start input) reports every member's complaints: keep those
    # of the member the input came closest to.
    members = {e["loc"][0] for e in errors if e["loc"] and isinstance(e["loc"][0], str) and _internal(e["loc"][0])}
    if len(members) > 1:
        best = min(members, key=lambda m: sum(1 for e in errors if e["loc"] and e["loc"][0] == m))
        errors = [e for e in errors if e["loc"] and e["loc"][0] == best]
    lines = []
    for e in errors:
        message = str(e["msg"]).removeprefix("Value error, ")
        lines.append(f"{_field(tuple(e['loc']))}: {message}")
    return "; ".join(dict.fromkeys(lines))


class InvalidPayload(ValueError):
    """A payload that does not fit its type, decoded where a retry may heal it."""


class ExplainingJSONPayloadConverter(PydanticJSONPlainPayloadConverter, WithSerializationContext):
    """Pydantic's JSON converter, with failures explained field by field and told apart by whose they are.

    All it needs of a payload's context is whether it belongs to a workflow: so there are just two of it,
    each made once with its cache of type adapters (a new one per payload cost a tenth of the worker's time).
    """

    def __init__(self, for_workflow: bool = False, sibling: ExplainingJSONPayloadConverter | None = None) -> None:
        super().__init__()
        self.for_workflow = for_workflow
        self._sibling = sibling

    def with_context(self, context: SerializationContext) -> Self:
        if isinstance(context, WorkflowSerializationContext) == self.for_workflow:
            return self
        if self._sibling is None:
            self._sibling = type(self)(not self.for_workflow, sibling=self)
        return self._sibling  # type: ignore[return-value]

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        try:
            return super().from_payload(payload, type_hint)
        except ValidationError as err:
            reason = explain(err)
            if self.for_workflow:
                # The workflow's own input or an update's argument (or, at a client, the
                # answer to one): the caller's to correct.
                raise ApplicationError(reason, type="InvalidInput", non_retryable=True) from None
            # Anything else (an activity's result or input): fail the task, retried after a fix.
            raise InvalidPayload(reason) from None


# The two JSON converters (inside a workflow's context, and outside), shared: stateless but for pydantic's
# cache of type adapters, which is what makes a second payload of a type cheap.
_JSON = ExplainingJSONPayloadConverter()


class AmendsPayloadConverter(CompositePayloadConverter):
    def __init__(self) -> None:
        json_converter = _JSON
        super().__init__(
            *(
                json_converter if isinstance(c, JSONPlainPayloadConverter) else c
                for c in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


@dataclasses.dataclass(frozen=True)
class AmendsDataConverter(DataConverter):
    """A data converter that is put in a payload's context once per kind of context, not once per payload.

    The SDK asks for a converter in the context of every payload it converts; the stock answer rebuilds the
    payload converter, its composite and the failure converter each time, and a fifteenth of the worker's
    time went there. All amends' conversion needs of a context is whether it is a workflow's (see
    ``ExplainingJSONPayloadConverter``); the codec and the failure converter take none.
    """

    _by_kind: dict[bool, DataConverter] = dataclasses.field(default_factory=dict, init=False, repr=False,
                                                            compare=False)

    def with_context(self, context: SerializationContext) -> Self:
        if any(isinstance(part, WithSerializationContext)
               for part in (self.payload_codec, self.failure_converter, self.external_storage)):
            return super().with_context(context)
        kind = isinstance(context, WorkflowSerializationContext)
        converter = self._by_kind.get(kind)
        if converter is None:
            converter = self._by_kind[kind] = super().with_context(context)
        return converter  # type: ignore[return-value]


data_converter = AmendsDataConverter(payload_converter_class=AmendsPayloadConverter)


def encrypted_converter(ring: KeyRing, base: DataConverter = data_converter) -> DataConverter:
    """``base``, its payloads and failure messages sealed with ``ring``'s current key (any of its keys opens)."""
    return dataclasses.replace(base, payload_codec=EncryptionCodec(ring),
                               failure_converter_class=DefaultFailureConverterWithEncodedAttributes)
