"""The customer's language: which templates a notice comes from, and amounts and dates in its format.

Customer notices live in ``templates/<language>/`` (``en``, ``de``), one
file per notice plus ``items.txt``, whose macros word each kind of remedy.
A report's ``locale`` (BCP 47, e.g. ``de-DE``) picks the language; one whose
language has no templates (``fr``) or that Babel does not know (``xx-YY``)
falls back to the worker's default (``AMENDS_DEFAULT_LOCALE``), then to
English, never to an error. Amounts and dates are formatted by Babel (CLDR)
for the whole locale (``de-CH`` writes "CHF 80.00"), amounts always with
the currency's own number of decimals as amends counts them
(``workflows.money.exponent``: JPY 0, USD 2, KWD 3).

The workflow hands over raw values (ISO dates, minor units, remedy items as
their JSON) and formatting happens here, at render time: the workflow stays
deterministic and never imports Babel.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_currency, format_percent
from jinja2 import Environment
from pydantic import TypeAdapter

from workflows.money import Money, exponent
from workflows.remedies import CouponItem, GiftItem, RefundItem, RemedyItem, SplitCostItem, WaiveBalanceItem, WorkItem

TEMPLATES_DIR = Path(__file__).with_name("templates")
# A language is supported when it has a folder of customer templates.
LANGUAGES = frozenset(p.name for p in TEMPLATES_DIR.iterdir() if p.is_dir())
BASE = "en"  # the last resort: always shipped
ITEMS = "items.txt"
_ITEM = TypeAdapter[RemedyItem](RemedyItem)
# CLDR's currency spacing, which Babel leaves out: "KWD 2.500", not "KWD2.500".
_LETTERS_AND_DIGITS = re.compile(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])")


def supported(tag: str | None) -> Locale | None:
    """The Babel locale for a BCP 47 tag whose language has templates; ``None`` when there is none.

    A region Babel does not know (``en-XX``) keeps its language.
    """
    if not tag:
        return None
    for candidate in (tag, tag.replace("_", "-").split("-")[0]):
        try:
            locale = Locale.parse(candidate.replace("_", "-"), sep="-")
        except (ValueError, TypeError, UnknownLocaleError):
            continue
        if locale.language in LANGUAGES:
            return locale
    return None


def resolve(tag: str | None, default: str = BASE) -> Language:
    """The language to write in: the customer's if supported, else the default, else English."""
    locale = supported(tag) or supported(default) or Locale.parse(BASE)
    return Language(locale)


@dataclass(frozen=True)
class Language:
    locale: Locale

    @property
    def code(self) -> str:
        """The templates' folder, and the HTML part's ``lang``: the language alone ("de")."""
        return str(self.locale.language)

    def stand_in(self, templates: Environment) -> str:
        """What a redacted staff name becomes in this language ("our team", "unser Team")."""
        return str(templates.get_template(f"{self.code}/{ITEMS}").module.stand_in)  # type: ignore[attr-defined]

    def money(self, amount: int, currency: str) -> str:
        """Minor units in the locale's format with the currency's own decimals: 8000 EUR in de is "80,00 €"."""
        places = exponent(currency)
        pattern = copy.copy(self.locale.currency_formats["standard"])
        pattern.frac_prec = (places, places)
        text = format_currency(Decimal(amount).scaleb(-places), currency, format=pattern, locale=self.locale,
                               currency_digits=False)
        return _LETTERS_AND_DIGITS.sub("\u00a0", text)

    def day(self, value: str | date) -> str:
        """An ISO date in the locale's long form: "3. Mai 2026", "May 3, 2026"."""
        day = value if isinstance(value, date) else date.fromisoformat(value)
        return format_date(day, "long", locale=self.locale)

    def percent(self, value: int) -> str:
        """"10 %" in German, "10%" in English."""
        return format_percent(Decimal(value) / 100, locale=self.locale)

    def values(self, context: Mapping[str, Any], templates: Environment,
               prose: Callable[[Any], Any], inline: Callable[[str], str] | None = None) -> dict[str, Any]:
        """The context's raw values written for this language: dates, amounts and remedy items.

        ``prose`` prepares text that came from inputs (the notices redact and
        mark it), ``inline`` the same for text that goes on in the middle of
        a remedy item's line ("we redo the work: …"); only the keys returned
        here are formatted, the rest are the caller's. A context made before
        values came raw (plain English strings) passes through as prose.
        """
        out: dict[str, Any] = {}
        for key in ("detected_on",):
            if isinstance(context.get(key), str) and context[key]:
                out[key] = self.day(context[key])
        for key in ("refunded", "gift"):
            if isinstance(context.get(key), dict):
                given = Money.model_validate(context[key])
                out[key] = self.money(given.amount, given.currency)
        if isinstance(context.get("remedy"), list):
            words = templates.get_template(f"{self.code}/{ITEMS}").module
            out["remedy"] = [self.item(v, words, inline or prose) if isinstance(v, dict) else prose(v)
                             for v in context["remedy"]]
        return out

    def item(self, given: Mapping[str, Any], words: Any, prose: Callable[[str], str]) -> str:
        """One remedy item in words (``items.txt``'s macro for its kind); a coupon's code once delivered."""
        spec = _ITEM.validate_python(given["item"])
        line: str
        if isinstance(spec, RefundItem):
            line = words.refund(amount=self._money(spec.amount))
        elif isinstance(spec, CouponItem):
            off = self._money(spec.amount_off) if spec.amount_off else self.percent(spec.percent_off or 0)
            line = words.coupon(off=off, days=spec.valid_for_days)
        elif isinstance(spec, WaiveBalanceItem):
            line = words.waive_balance(amount=self._money(spec.amount), invoice=prose(spec.invoice_reference))
        elif isinstance(spec, WorkItem):
            line = getattr(words, spec.kind)(description=prose(spec.description))
        elif isinstance(spec, SplitCostItem):
            split = words.split_cost_refund if spec.paid_as == "refund" else words.split_cost_coupon
            line = split(percent=self.percent(spec.our_share_percent), description=prose(spec.description),
                         cost=self._money(spec.cost), share=self._money(spec.share))
        else:
            assert isinstance(spec, GiftItem)
            voucher = self._money(spec.coupon_amount) if spec.coupon_amount else ""
            line = words.gift(voucher=voucher, note=prose(spec.note or ""))
        line = str(line).strip()
        # The customer quotes the code back to us: shown as it is, like a gift code.
        if given.get("code"):
            line = str(words.with_code(line=line, code=given["code"])).strip()
        return line

    def _money(self, given: Money) -> str:
        return self.money(given.amount, given.currency)
