"""Money: integer minor units plus an ISO 4217 code, and the one way amounts are shown to people."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import pycountry
from pydantic import AfterValidator, Field, Strict

from workflows.basics import Contract

# Active ISO 4217 codes of money (pycountry's copy of the standard), read once when
# the module is imported, outside the workflow sandbox; not the units of account,
# metals and test codes that also carry an X code.
NOT_MONEY = frozenset({"XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XDR", "XPD", "XPT", "XSU", "XTS", "XUA", "XXX"})
ISO_4217 = frozenset(c.alpha_3 for c in pycountry.currencies) - NOT_MONEY

# How Stripe counts minor units (its list of zero- and three-decimal currencies); every
# other currency is two-decimal there, ISK included (Stripe takes ISK amounts in
# hundredths, whole krónur only).
ZERO_DECIMAL = frozenset({"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND",
                          "VUV", "XAF", "XOF", "XPF"})
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
# Most minor units one amount may hold: ten billion US dollars, a bound no remedy nears.
MAX_MINOR_UNITS = 10**12


def _iso_4217(code: str) -> str:
    if code not in ISO_4217:
        raise ValueError(f"'{code}' is not an ISO 4217 currency code such as USD, EUR or JPY")
    return code


Currency = Annotated[
    str,
    Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code in upper case, e.g. USD, EUR."),
    AfterValidator(_iso_4217),
]


def exponent(currency: str) -> int:
    currency = currency.upper()
    return 0 if currency in ZERO_DECIMAL else 3 if currency in THREE_DECIMAL else 2


def format_money(amount: int, currency: str) -> str:
    """8000 USD is "80.00 USD"; 8000 JPY is "8000 JPY"."""
    places = exponent(currency)
    return f"{Decimal(amount).scaleb(-places):.{places}f} {currency}"


class Money(Contract):
    amount: Annotated[int, Strict()] = Field(
        gt=0, le=MAX_MINOR_UNITS,
        description="Integer minor units (cents for USD, yen for JPY), a JSON integer; must be positive.",
    )
    currency: Currency

    def __str__(self) -> str:
        return format_money(self.amount, self.currency)
