"""How listing commands print: plain tables with aligned columns.

A row is one line, never wrapped nor cut to the terminal's width (an S3 URI stays whole, so
`grep`, `cut` and `awk` work on the output), and cells are printed as they are: a failure
reason holding `[/red]` is text, not markup. Standard library only: rich's table costs every
listing command ~35 ms of imports.
"""

from __future__ import annotations

import os
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

    def render(self, color: bool = False) -> str:
        """The table as text; with `color`, the values named in `colors` wrapped in ANSI colors."""
        widths = [max(len(row[i]) for row in [self.columns, *self.rows]) for i in range(len(self.columns))]
        lines = [self.title] if self.title else []
        for number, row in enumerate([self.columns, *self.rows]):
            cells = []
            for column, cell, width in zip(self.columns, row, widths):
                padded = cell.ljust(width)
                code = _COLORS.get(self.colors.get(column, {}).get(cell, "")) if color and number else None
                cells.append(f"\033[{code}m{cell}\033[0m{padded[len(cell):]}" if code else padded)
            lines.append(_GAP.join(cells).rstrip())
        return "\n".join(lines)

    def print(self) -> None:
        """Print to stdout, in color on a terminal unless NO_COLOR is set (no-color.org)."""
        print(self.render(color=sys.stdout.isatty() and not os.environ.get("NO_COLOR")), flush=True)
