"""The marked sections of a Markdown file: what `make docs` may rewrite, and nothing else.

    <!-- generated: NAME (from SOURCE, SOURCE; make docs) -->

    ...figures...

    <!-- /generated: NAME -->

A block section has its markers on lines of their own; an inline one sits inside a line
(`<!-- generated: NAME -->...<!-- /generated: NAME -->`) and is replaced in place. The
begin marker is rewritten too, so it always names the artifacts the figures came from.
Everything outside the markers is hand-written and left byte for byte as it was."""

from __future__ import annotations

import re
from dataclasses import dataclass

# names are lower case: an example written with NAME (as above) is not a section
BEGIN = re.compile(r"<!-- generated: (?P<name>[a-z0-9][a-z0-9.-]*)(?: \([^>]*\))? -->")
COMMAND = "make docs"


def end_marker(name: str) -> str:
    return f"<!-- /generated: {name} -->"


def begin_marker(name: str, sources: list[str] | tuple[str, ...]) -> str:
    origin = f"from {', '.join(sources)}; " if sources else ""
    return f"<!-- generated: {name} ({origin}{COMMAND}) -->"


@dataclass(frozen=True)
class Block:
    name: str
    start: int   # of the begin marker
    end: int     # just past the end marker
    inline: bool


class MarkerError(ValueError):
    pass


def blocks(text: str) -> list[Block]:
    """Every marked section of `text`, in order; a begin marker without its end, or a
    section inside another, is an error."""
    found, at = [], 0
    while (match := BEGIN.search(text, at)) is not None:
        name = match["name"]
        close = text.find(end_marker(name), match.end())
        if close < 0:
            raise MarkerError(f"generated section {name!r} has no {end_marker(name)}")
        inner = BEGIN.search(text, match.end(), close)
        if inner is not None:
            raise MarkerError(f"generated section {inner['name']!r} starts inside {name!r}")
        line_start = match.start() == 0 or text[match.start() - 1] == "\n"
        inline = not (line_start and text[match.end():match.end() + 1] == "\n")
        found.append(Block(name, match.start(), close + len(end_marker(name)), inline))
        at = close + len(end_marker(name))
    return found


def render(name: str, body: str, sources, inline: bool) -> str:
    begin, end = begin_marker(name, sources), end_marker(name)
    if inline:
        return f"{begin}{body.strip()}{end}"
    return f"{begin}\n\n{body.strip(chr(10))}\n\n{end}"


def replace(text: str, rendered: dict) -> str:
    """`text` with every marked section rewritten from `rendered` (name -> Section, with
    .body and .sources); an unknown name is an error."""
    out, at = [], 0
    for block in blocks(text):
        if block.name not in rendered:
            raise MarkerError(f"no generator for the section {block.name!r}")
        section = rendered[block.name]
        out += [text[at:block.start],
                render(block.name, section.body, section.sources, block.inline)]
        at = block.end
    out.append(text[at:])
    return "".join(out)


def outside(text: str) -> str:
    """`text` without its marked sections (what is typed by hand)."""
    out, at = [], 0
    for block in blocks(text):
        out.append(text[at:block.start])
        at = block.end
    out.append(text[at:])
    return "".join(out)


def bodies(text: str) -> dict[str, str]:
    """{name: the text between the markers} of every section in `text`."""
    return {b.name: text[b.start:b.end] for b in blocks(text)}
