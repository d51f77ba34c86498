"""How amends writes amounts, durations and times for people: one way each, used everywhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from workflows.money import format_money


def money(amount: int, currency: str) -> str:
    """8000 USD is "80.00 USD"; 8000 JPY is "8000 JPY" (the currency's own number of decimals)."""
    return format_money(amount, currency)


def duration(delta: timedelta | float) -> str:
    """'3 d', '2.5 h', '45 min', '20 s' (seconds may be given as a number; the sign is dropped)."""
    seconds = abs(delta.total_seconds() if isinstance(delta, timedelta) else float(delta))

    def short(value: float, unit: str) -> str:
        return f"{value:.1f}".rstrip("0").rstrip(".") + f" {unit}"

    if seconds >= 86400:
        return short(seconds / 86400, "d")
    if seconds >= 3600:
        return short(seconds / 3600, "h")
    if seconds >= 60:
        return f"{int(seconds // 60)} min"
    return f"{int(seconds)} s"


def utc(moment: datetime, seconds: bool = False) -> str:
    """'2026-11-25 09:30 UTC' (with seconds: '2026-11-25 09:30:15 UTC')."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


def a(word: object) -> str:
    """'a manager', 'an agent'."""
    text = str(word)
    return f"an {text}" if text[:1] in "aeiou" else f"a {text}"
