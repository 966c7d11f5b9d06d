"""Presenting the report's tables: a neutral table (header, rows of cells) and its markdown and
LaTeX renderings.

The report's sections compute :class:`Table` objects; a cell is made of spans that say what
they are, not how a format spells them: plain strings (numbers, dashes) print as they are,
:class:`Text` is escaped for the format, :class:`Sym` is a symbol (±, >, †, ‡, ×, ≥, ≤) and
:func:`bold`/:func:`italic` emphasise their spans. :func:`to_markdown` and :func:`to_latex`
print a table.
"""
from __future__ import annotations

import dataclasses
import math
from typing import List, Optional, Sequence, Tuple, Union


def finite(x) -> bool:
    """Whether x is a finite number (None, NaN, inf and non-numbers are not)."""
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def fmt_num(x, prec: int) -> str:
    return f"{float(x):.{prec}f}" if finite(x) else "–"


def fmt_steps(x) -> str:
    if not finite(x):
        return "–"
    x = float(x)
    if abs(x) >= 1e6:
        return f"{x / 1e6:.2f}M"
    if abs(x) >= 1e4:
        return f"{x / 1e3:.0f}k"
    if abs(x) >= 1e3:
        return f"{x / 1e3:.1f}k"
    return f"{x:.0f}"


def tex_escape(s) -> str:
    rep = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
           "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
           "^": r"\textasciicircum{}"}
    return "".join(rep.get(ch, ch) for ch in str(s))


def md_escape(s) -> str:
    return str(s).replace("|", r"\|").replace("\n", " ")


class _Fmt:
    """Markdown and LaTeX spellings of the few symbols the tables use."""

    def __init__(self, tex: bool):
        self.tex = tex
        self.pm = r" $\pm$ " if tex else " ± "
        self.gt = r"$>$" if tex else ">"
        self.dagger = r"$^\dagger$" if tex else "†"
        self.ddagger = r"$^\ddagger$" if tex else "‡"
        self.times = r"$\times$" if tex else "×"
        self.ge = r"$\geq$" if tex else "≥"
        self.le = r"$\leq$" if tex else "≤"

    def text(self, s) -> str:
        return tex_escape(s) if self.tex else md_escape(s)

    def bold(self, s: str) -> str:
        return f"\\textbf{{{s}}}" if self.tex else f"**{s}**"

    def italic(self, s: str) -> str:
        return f"\\textit{{{s}}}" if self.tex else f"*{s}*"


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]],
             align: Optional[Sequence[str]] = None) -> str:
    align = align or ["l"] * len(header)
    sep = ["---:" if a == "r" else (":---:" if a == "c" else ":---") for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def tex_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str, caption: str,
              label: str, midrules: Sequence[int] = (), wide: bool = False) -> str:
    env = "table*" if wide else "table"
    out = [f"\\begin{{{env}}}[t]", "\\centering", "\\small",
           f"\\caption{{{caption}}}", f"\\label{{{label}}}",
           f"\\begin{{tabular}}{{{align}}}", "\\toprule", " & ".join(header) + r" \\", "\\midrule"]
    for i, r in enumerate(rows):
        if i in midrules:
            out.append("\\midrule")
        out.append(" & ".join(c.replace("–", "--") for c in r) + r" \\")
    out += ["\\bottomrule", "\\end{tabular}", f"\\end{{{env}}}", ""]
    return "\n".join(out)


# ----------------------------------------------------------------------------- neutral tables

@dataclasses.dataclass(frozen=True)
class Text:
    """Words, escaped for the output format."""

    value: str


@dataclasses.dataclass(frozen=True)
class Sym:
    """A symbol each format spells its own way: pm, gt, dagger, ddagger, times, ge, le."""

    name: str


@dataclasses.dataclass(frozen=True)
class Emphasis:
    """Spans set in ``bold`` or ``italic`` (made by :func:`bold` and :func:`italic`)."""

    style: str
    spans: Tuple


def bold(*spans) -> Emphasis:
    return Emphasis("bold", spans)


def italic(*spans) -> Emphasis:
    return Emphasis("italic", spans)


Cell = Union[str, Text, Sym, Emphasis, list]


@dataclasses.dataclass
class Table:
    """A table independent of its format: header cells, rows of cells, column alignment
    ('l', 'r', 'c') and the rows that start a new group (a rule in LaTeX)."""

    header: List[Cell]
    rows: List[List[Cell]]
    align: List[str]
    groups: List[int] = dataclasses.field(default_factory=list)


class Renderer:
    """Spells cells in one format (markdown or LaTeX)."""

    def __init__(self, tex: bool):
        self.fmt = _Fmt(tex)

    def cell(self, c: Cell) -> str:
        if isinstance(c, str):
            return c
        if isinstance(c, Text):
            return self.fmt.text(c.value)
        if isinstance(c, Sym):
            return getattr(self.fmt, c.name)
        if isinstance(c, Emphasis):
            return getattr(self.fmt, c.style)(self.cell(list(c.spans)))
        return "".join(self.cell(x) for x in c)


MARKDOWN, LATEX = Renderer(tex=False), Renderer(tex=True)


def to_markdown(table: Table) -> str:
    """The table in markdown (a pipe table)."""
    return md_table([MARKDOWN.cell(h) for h in table.header],
                    [[MARKDOWN.cell(c) for c in row] for row in table.rows], table.align)


def to_latex(table: Table, caption: str, label: str, wide: bool = False,
             header: Optional[Sequence[Cell]] = None) -> str:
    """The table as a LaTeX float (booktabs); `header` replaces the table's own where the
    paper's columns are named more tightly."""
    return tex_table([LATEX.cell(h) for h in (table.header if header is None else header)],
                     [[LATEX.cell(c) for c in row] for row in table.rows], "".join(table.align),
                     caption, label, table.groups, wide=wide)
