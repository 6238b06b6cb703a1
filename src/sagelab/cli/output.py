"""How listing commands print: plain tables with aligned columns.

A row is one line and cells are printed as they are: a failure reason holding `[/red]` is text,
not markup. Piped or redirected, nothing is ever cut (an S3 URI stays whole, so `grep`, `cut` and
`awk` work on the output); on a terminal too narrow for the table, the widest columns are cut in
the middle (`s3://bucket/…/model.tar.gz`), keeping both ends of each cell. Standard library only:
rich's table costs every listing command ~35 ms of imports.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping

_GAP = "  "
_COLORS = {"green": "32", "yellow": "33", "red": "1;31"}


class Table:
    """Rows under a header, each column as wide as its widest cell.

    Example:
        >>> table = Table("Step", "Status")
        >>> table.add_row("Train", "Succeeded")
        >>> print(table.render())
        Step   Status
        Train  Succeeded
    """

    def __init__(self, *columns: str, title: str = "", colors: Mapping[str, Mapping[str, str]] | None = None) -> None:
        """`colors` maps a column to the color of some of its values ({"Status": {"fail": "red"}}), shown on a terminal only."""
        self.columns = columns
        self.title = title
        self.colors = colors or {}
        self.rows: list[tuple[str, ...]] = []

    def add_row(self, *cells: object) -> None:
        """Add a row; a cell with several lines continues on the lines below, the other columns left blank there."""
        if len(cells) != len(self.columns):
            raise ValueError(f"a row of {len(self.columns)} columns got {len(cells)} cells")
        lines = [str(cell).splitlines() or [""] for cell in cells]
        for index in range(max(map(len, lines))):
            self.rows.append(tuple(cell[index] if index < len(cell) else "" for cell in lines))

    def render(self, color: bool = False, width: int | None = None) -> str:
        """The table as text; with `color`, the values named in `colors` wrapped in ANSI colors; with `width`,
        the widest columns cut down (in the middle of each cell) until a line fits, where it can."""
        widths = _fit([max(len(row[i]) for row in [self.columns, *self.rows]) for i in range(len(self.columns))], width)
        lines = [self.title] if self.title else []
        for number, row in enumerate([self.columns, *self.rows]):
            cells = []
            for column, cell, width in zip(self.columns, row, widths):
                cell = _shorten(cell, width)
                padded = cell.ljust(width)
                code = _COLORS.get(self.colors.get(column, {}).get(cell, "")) if color and number else None
                cells.append(f"\033[{code}m{cell}\033[0m{padded[len(cell):]}" if code else padded)
            lines.append(_GAP.join(cells).rstrip())
        return "\n".join(lines)

    def print(self) -> None:
        """Print to stdout; on a terminal, in color (unless NO_COLOR is set: no-color.org) and fitted to its width."""
        terminal = sys.stdout.isatty()
        width = shutil.get_terminal_size().columns if terminal else None
        print(self.render(color=terminal and not os.environ.get("NO_COLOR"), width=width), flush=True)


_NARROWEST = 24  # no column is cut below this: short values (statuses, times, ids) stay whole


def _fit(widths: list[int], total: int | None) -> list[int]:
    """Column widths whose line (with the gaps) fits `total` characters where it can, cutting the widest column first.

    What cannot fit once every column is down to _NARROWEST is left to the terminal to wrap.
    """
    widths = list(widths)
    if total is None:
        return widths
    excess = sum(widths) + len(_GAP) * (len(widths) - 1) - total
    while excess > 0:
        widest = max(range(len(widths)), key=widths.__getitem__)
        if widths[widest] <= _NARROWEST:
            break
        others = [w for i, w in enumerate(widths) if i != widest]
        cut = min(excess, widths[widest] - max([_NARROWEST, *others]) or 1, widths[widest] - _NARROWEST)
        widths[widest] -= cut
        excess -= cut
    return widths


def _shorten(cell: str, width: int) -> str:
    """`cell` in `width` characters: cut in the middle with an ellipsis, keeping both ends."""
    if len(cell) <= width:
        return cell
    head = (width - 1) // 2
    return f"{cell[:head]}…{cell[len(cell) - (width - 1 - head):]}"


def print_json(value: object) -> None:
    """What `--json` prints: indented, with anything JSON lacks (datetimes from boto3) as text."""
    import json

    print(json.dumps(value, indent=2, default=str), flush=True)
