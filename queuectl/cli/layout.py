"""How tables and field lists fit a terminal without hiding what users copy (rich; terminal and pipe).

The rules (docs/runs.md, "Tables"):
- into a pipe nothing is cut or wrapped: plain aligned columns, one row per line;
- on a terminal every column keeps its whole width (ids, names, paths, times) except one,
  the column that gives way (a command, a description, an error): it takes the width left,
  wraps onto at most one more line, then is cut with an ellipsis;
- when the whole columns alone are wider than the terminal, the row is printed wider than
  the terminal (the terminal folds it) rather than cut an id;
- a field list (`show`) wraps its values at spaces and never cuts or splits a path or an id.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from queuectl.listing import one_line

Cell = str | Text
GIVE_LINES = 2  # the column that gives way: at most this many lines, then an ellipsis
GIVE_MIN = 8  # ... and never narrower than this (or its header)
VALUE_MIN = 20  # a field list's values wrap no narrower than this


def _width(cell: Cell) -> int:
    plain = cell.plain if isinstance(cell, Text) else cell
    return max((cell_len(line) for line in plain.split("\n")), default=0)


def _wrap(cell: Cell, width: int, lines: int | None) -> Text:
    """`cell` made one line, then wrapped at `width`: at most `lines` lines, a longer word split;
    or, with `lines` None, as many lines as it needs, split only at spaces (ids stay whole)."""
    style = cell.style if isinstance(cell, Text) else ""
    plain = one_line(cell.plain if isinstance(cell, Text) else cell)
    if cell_len(plain) <= width:
        return Text(plain, style=style)
    wrapped = textwrap.wrap(
        plain, width, max_lines=lines, placeholder="…", break_on_hyphens=False, break_long_words=lines is not None
    )
    return Text("\n".join(wrapped), style=style)


@dataclass
class Grid:
    """A table whose column `give` (a header) gives way on a narrow terminal; print it with `emit`.

    `give_lines`: the lines that column may take (None: as many as it needs, split only at spaces).
    `min_widths`: widths to keep at least, so that tables printed one after another line up.
    """

    headers: Sequence[str]
    give: str | None = None
    give_lines: int | None = GIVE_LINES
    min_widths: Sequence[int] = ()
    rows: list[tuple[Cell, ...]] = field(default_factory=list)
    show_header: bool = True

    def add_row(self, *cells: Cell) -> None:
        self.rows.append(cells)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if not console.is_terminal:
            yield self._plain()
            return
        table, total = self._fitted(options.max_width)
        yield from console.render(table, options.update_width(max(total, options.max_width)))

    def _plain(self) -> Segment:
        """Plain aligned columns, two spaces apart, nothing cut, no space at a line's end."""
        rows = [[_plain(c) for c in row] for row in self.rows]
        if self.show_header:
            rows.insert(0, list(self.headers))
        widths = [max((cell_len(row[i]) for row in rows), default=0) for i in range(len(self.headers))]
        lines = ("  ".join(c + " " * (w - cell_len(c)) for c, w in zip(row, widths, strict=True)) for row in rows)
        return Segment("".join(f"{line.rstrip()}\n" for line in lines))

    def natural_widths(self) -> list[int]:
        widths = [max(cell_len(h), m) for h, m in zip(self.headers, self._mins(), strict=True)]
        for row in self.rows:
            for i, cell in enumerate(row):
                width = _width(cell) if self.headers[i] != self.give else cell_len(one_line(_plain(cell)))
                widths[i] = max(widths[i], width)
        return widths

    def _mins(self) -> list[int]:
        return [*self.min_widths, *[0] * len(self.headers)][: len(self.headers)]

    def _fitted(self, room: int) -> tuple[Table, int]:
        """The terminal table in `room` columns, and its width (more than `room` when the whole columns need it).

        A table that fits is boxed (a rule under the header); one that does not drops the edges and
        the rule first, then the column that gives way takes what is left.
        """
        widths = self.natural_widths()
        count = len(widths)
        boxed = sum(widths) + 2 + (count - 1) + 2 * count <= room  # SIMPLE_HEAD: edges, separators, padding
        overhead = 2 + (count - 1) + 2 * count if boxed else 2 * (count - 1)
        give = self.headers.index(self.give) if self.give in self.headers else None
        if give is not None and sum(widths) + overhead > room:
            kept = sum(w for i, w in enumerate(widths) if i != give)
            floor = min(widths[give], max(GIVE_MIN, cell_len(self.headers[give])))
            if self.give_lines is None:  # wrapped only at spaces: as wide as its longest word (a run id)
                floor = max([floor, *(_longest_word(row[give]) for row in self.rows)])
            widths[give] = max(floor, room - overhead - kept)
        if boxed:
            grid = Table(*self.headers, box=box.SIMPLE_HEAD, header_style="bold", show_header=self.show_header)
        else:
            grid = Table(*self.headers, box=None, pad_edge=False, header_style="bold", show_header=self.show_header)
        for i, column in enumerate(grid.columns):
            column.width, column.no_wrap, column.overflow = widths[i], True, "ignore"
        for row in self.rows:
            grid.add_row(*(_wrap(c, widths[i], self.give_lines) if i == give else c for i, c in enumerate(row)))
        return grid, sum(widths) + overhead


def _plain(cell: Cell) -> str:
    return cell.plain if isinstance(cell, Text) else cell


def _longest_word(cell: Cell) -> int:
    return max((cell_len(word) for word in one_line(_plain(cell)).split()), default=0)


@dataclass
class Fields:
    """KEY  VALUE lines (as `show` prints them): values wrap at spaces on a terminal; `whole` keys never wrap."""

    lines: Iterable[tuple[str, str]]
    whole: frozenset[str] = frozenset()

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines = list(self.lines)
        key_width = max((cell_len(k) for k, _ in lines), default=0)
        room = max(VALUE_MIN, options.max_width - key_width - 2) if console.is_terminal else None
        indent = " " * (key_width + 2)
        for key, value in lines:
            parts = value.split("\n")
            if room is not None and key not in self.whole:
                wrapper = textwrap.TextWrapper(room, break_long_words=False, break_on_hyphens=False)
                parts = [piece for part in parts for piece in (wrapper.wrap(part) or [""])]
            head = key + " " * (key_width - cell_len(key))
            yield Segment(f"{head}  {parts[0]}\n")
            for part in parts[1:]:
                yield Segment(f"{indent}{part}\n")


def emit(con: Console, renderable: Grid | Fields | Table) -> None:
    """Print a grid or field list whole: a row wider than the terminal is not cropped (the terminal folds it)."""
    con.print(renderable, crop=False)
