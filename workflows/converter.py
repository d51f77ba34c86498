"""amends' data converter: ``pydantic_data_converter`` that explains bad input.

Payloads stay plain JSON through pydantic, exactly as
``temporalio.contrib.pydantic`` writes and reads them. The only change: when
a backend's JSON does not fit a contract, the SDK would report just "Failed
decoding arguments"; here the caller gets pydantic's reason, naming each
field and the rule it broke (for example ``by.role: Input should be
'agent', 'manager', …``), as a non-retryable ``InvalidInput`` failure. For
an update that is a rejection, so nothing is written to history.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
)
from temporalio.exceptions import ApplicationError


def explain(err: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in err.errors(include_url=False)
    )


class ExplainingJSONPayloadConverter(PydanticJSONPlainPayloadConverter):
    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        try:
            return super().from_payload(payload, type_hint)
        except ValidationError as err:
            raise ApplicationError(explain(err), type="InvalidInput", non_retryable=True) from None


class AmendsPayloadConverter(CompositePayloadConverter):
    def __init__(self) -> None:
        json_converter = ExplainingJSONPayloadConverter()
        super().__init__(
            *(
                json_converter if isinstance(c, JSONPlainPayloadConverter) else c
                for c in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


data_converter = DataConverter(payload_converter_class=AmendsPayloadConverter)
