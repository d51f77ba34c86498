"""Money: integer minor units plus an ISO 4217 code, and the one way amounts are shown to people."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import Field

from workflows.basics import Contract

Currency = Annotated[
    str,
    Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code in upper case, e.g. USD, EUR."),
]

# ISO 4217 currencies whose minor unit is not the cent (as Stripe counts them).
ZERO_DECIMAL = frozenset({"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI",
                          "VND", "VUV", "XAF", "XOF", "XPF"})
THREE_DECIMAL = frozenset({"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"})


def exponent(currency: str) -> int:
    currency = currency.upper()
    return 0 if currency in ZERO_DECIMAL else 3 if currency in THREE_DECIMAL else 2


def format_money(amount: int, currency: str) -> str:
    """8000 USD is "80.00 USD"; 8000 JPY is "8000 JPY"."""
    places = exponent(currency)
    return f"{Decimal(amount).scaleb(-places):.{places}f} {currency}"


class Money(Contract):
    amount: int = Field(gt=0, description="Integer minor units (cents for USD, yen for JPY); must be positive.")
    currency: Currency

    def __str__(self) -> str:
        return format_money(self.amount, self.currency)
