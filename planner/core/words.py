"""How figures read in every output for people: dollars and counted nouns. Pure."""

from __future__ import annotations


def money(x: float) -> str:
    """Dollars as a bill shows them: cents from a cent up ("$1,234.50"), else the figure to
    a ten-thousandth without trailing zeros ("$0.005", "$0.0004"), "<$0.0001" below that:
    only nothing is "$0.00"."""
    if x == 0:
        return "$0.00"
    if abs(x) >= 0.01:
        return f"${x:,.2f}"
    if abs(x) < 0.00005:
        return "<$0.0001"
    return "$" + f"{x:.4f}".rstrip("0")


def plural(n: int, word: str, many: str | None = None) -> str:
    """``n`` and the noun that goes with it: "1 path", "2 paths", "0 paths", "1,200 paths";
    ``many``: the plural when it is not ``word`` + "s" ("needless misses")."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


class Doc:
    """A document for people, written once for two formats: ``"table"`` (a terminal) and
    ``"markdown"`` (CI job summaries, pull-request comments: CommonMark with GFM tables).

    Blocks are a title, headings, runs of lines and tables. In markdown every block stands
    apart (a blank line before and after: a line right after a table would be read as one
    of its rows), the title and headings are headings, and lines are a list. In a terminal
    lines are lines, headings plain text after a blank line, tables tabulate's "simple"."""

    def __init__(self, fmt: str = "table") -> None:
        self.md = fmt == "markdown"
        self._blocks: list[str] = []
        self._lines: list[str] = []

    def title(self, text: str) -> None:
        self._block(f"## {_inline(text)}" if self.md else text, after_heading=True)

    def heading(self, text: str) -> None:
        self._block(f"### {_inline(text)}" if self.md else text, after_heading=True)

    def line(self, text: str) -> None:
        self._lines.append(f"- {_inline(text)}" if self.md else text)

    def table(self, rows: list[list[object]], headers: list[str],
              colalign: tuple[str, ...] | None = None) -> None:
        from tabulate import (
            tabulate,  # only for people's formats: JSON runs skip its import
        )

        if self.md:
            rows = [[_cell(c) for c in row] for row in rows]
        text = tabulate(rows, headers=headers, tablefmt="github" if self.md else "simple",
                        colalign=colalign, disable_numparse=True)
        self._block(text)

    def text(self) -> str:
        self._flush()
        return "\n\n".join(b for b in self._blocks if b).rstrip("\n") + "\n"

    # A heading's content follows it on the next line in a terminal (a blank line in markdown).
    _heading_last = False

    def _block(self, text: str, after_heading: bool = False) -> None:
        self._flush()
        if self._heading_last and not self.md:
            self._blocks[-1] += "\n" + text
        else:
            self._blocks.append(text)
        self._heading_last = after_heading

    def _flush(self) -> None:
        if self._lines:
            lines, self._lines = self._lines, []
            self._block("\n".join(lines))


def _inline(text: str) -> str:
    """``text`` as markdown inline content: characters that would start markup escaped
    (each line starts with a list marker or a heading's '#', so '#' and '>' stay as they are)."""
    return "".join("\\" + c if c in "\\`*_[]<|" else c for c in text)


def _cell(value: object) -> str:
    """A table cell in markdown: inline content, with '|' escaped (it would end the cell)."""
    return _inline(str(value))
