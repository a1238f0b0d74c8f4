"""How the docs write a figure: one place, so every generated section reads alike."""

from __future__ import annotations

import math

NOT_IN_RUN = "not in this run"


def ok(value) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def num(value, digits: int = 0) -> str:
    """1,234 / 5.19; '–' for a missing value."""
    return f"{float(value):,.{digits}f}" if ok(value) else "–"


def ratio(value, digits: int = 2) -> str:
    return f"{float(value):.{digits}f}×" if ok(value) else "–"


def pct(value, digits: int = 0) -> str:
    return f"{float(value):.{digits}f} %" if ok(value) else "–"


def span(low, high, digits: int = 0) -> str:
    """'9,438–11,060', or one figure when both ends agree."""
    if not (ok(low) and ok(high)):
        return "–"
    a, b = num(low, digits), num(high, digits)
    return a if a == b else f"{a}–{b}"


def median_range(median, low, high, digits: int = 0) -> str:
    """'10,768 (9,890–11,120)': a median with its min–max over repetitions."""
    text = num(median, digits)
    if ok(low) and ok(high) and num(low, digits) != num(high, digits):
        text += f" ({num(low, digits)}–{num(high, digits)})"
    return text


def seconds(value: float) -> str:
    """'2 min 38 s', '4 h 09 min', '12 s' (as `bench plan` prints them)."""
    minutes, secs = divmod(int(round(value)), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def p_value(p: float) -> str:
    return f"p = {p:.2g}"


def names(items) -> str:
    """'a, b and c'."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def cell(text) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(header: list[str], rows: list[list[str]], right: set[int] | None = None) -> str:
    """A Markdown table; columns in `right` (by index) are right-aligned."""
    right = right if right is not None else set(range(1, len(header)))
    rule = ["---:" if i in right else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def count(n: int, thing: str, plural: str | None = None) -> str:
    return f"{n:,} {thing if n == 1 else (plural or thing + 's')}"
