"""Finding people's names in text: for keeping staff out of customer notices and post-mortems.

Pure and deterministic, so both activities and workflow validators use it.
"""

from __future__ import annotations

import re


def name_pattern(names: list[str], min_part: int) -> re.Pattern[str] | None:
    """A case-insensitive pattern for each full name and each of its parts of ``min_part`` letters or more.

    The full names come first, longest first, so "Dave Miller" matches as a
    whole before "Dave" alone. ``None`` when there is no name to look for.
    """
    parts: list[str] = []
    for name in sorted(names, key=len, reverse=True):
        parts += [name, *(p for p in name.split() if len(p) >= min_part)]
    parts = [p for p in dict.fromkeys(parts) if p.strip()]
    if not parts:
        return None
    return re.compile(r"\b(" + "|".join(re.escape(p) for p in parts) + r")\b", re.IGNORECASE)
