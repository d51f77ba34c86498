"""Rich output for a person at a terminal; the same facts as plain text for pipes, files and tests.

The choice is the stream's own ``isatty()``, not rich's guess: FORCE_COLOR
and friends must not put ANSI codes into a script's input. rich is imported
only when it draws, so that commands printing plain text start faster.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table


def terminal(err: bool = False) -> bool:
    stream = sys.stderr if err else sys.stdout
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced or closed streams
        return False


def console(err: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=err, highlight=False, force_terminal=True)


def table(columns: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[str] = (),
          whole: Sequence[str] = ()) -> Table:
    """Columns in ``numeric`` align right; those in ``whole`` (ids to copy) are never cut or wrapped, the
    others fold when the terminal is narrow (nothing is cut off with an ellipsis)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    rows = [list(row) for row in rows]
    out = Table(header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    for n, name in enumerate(columns):
        widest = max([len(name)] + [len(row[n]) for row in rows])
        out.add_column(name, justify="right" if name in numeric else "left", no_wrap=name in whole,
                       min_width=widest if name in whole else None, overflow="fold")
    for row in rows:
        out.add_row(*(Text(cell) for cell in row))  # data, never rich markup
    return out
