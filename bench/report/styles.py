"""How each model looks in every chart (PNG and the interactive report alike): colour by
family, so a reader sees the design at a glance, and within a family a distinct marker
and line style, so no two models of a run look the same even in greyscale.

The palette is Okabe & Ito's colour-blind-safe set. A model this project does not know
(a native server, an external `--server NAME=COMMAND`) falls into the family "external"
and still gets its own marker and dash, numbered among the run's unknown models."""

from __future__ import annotations

from dataclasses import dataclass

# Family -> (colour, its models in a fixed order: the order picks marker and dash).
FAMILIES = {
    "blocking": ("#D55E00", ("blocking", "nonblocking")),
    "threads/processes": ("#E69F00", ("threaded", "forking")),
    "readiness": ("#0072B2", ("select", "poll", "epoll", "selectors", "sigio")),
    "event-loop libraries": ("#009E73", ("asyncio", "uvloop")),
    "completion": ("#CC79A7", ("iouring",)),
    "external": ("#444444", ()),
}
EXTERNAL = "external"
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
DASHES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1)), (0, (1, 1)), (0, (8, 2)))
# The same shapes and dashes in plotly's names (the interactive report).
PLOTLY_MARKERS = ("circle", "square", "triangle-up", "diamond", "triangle-down", "cross",
                  "x", "triangle-left", "triangle-right", "hexagon")
PLOTLY_DASHES = ("solid", "dash", "dot", "dashdot", "longdashdot", "dot", "longdash")
# Shade steps within a family (0 = the family colour itself): darker/lighter alternately.
SHADES = (0.0, -0.35, 0.3, -0.6, 0.45)


@dataclass(frozen=True)
class Style:
    family: str
    colour: str
    marker: str
    dash: object
    plotly_marker: str
    plotly_dash: str


def family_of(model: str) -> str:
    for family, (_, models) in FAMILIES.items():
        if model in models:
            return family
    return EXTERNAL


def _shade(colour: str, amount: float) -> str:
    """Lighter (amount > 0, towards white) or darker (amount < 0, towards black)."""
    rgb = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    target = 255 if amount > 0 else 0
    mixed = [round(c + (target - c) * abs(amount)) for c in rgb]
    return "#" + "".join(f"{c:02x}" for c in mixed)


def model_style(model: str, run_models=()) -> Style:
    """The style of `model`; `run_models` (every model of the run) numbers the unknown ones
    so that two external servers never share a marker."""
    family = family_of(model)
    colour, members = FAMILIES[family]
    if family == EXTERNAL:
        unknown = sorted({m for m in run_models if family_of(m) == EXTERNAL} | {model})
        index = unknown.index(model)
    else:
        index = members.index(model)
    return Style(family, _shade(colour, SHADES[index % len(SHADES)]),
                 MARKERS[index % len(MARKERS)], DASHES[index % len(DASHES)],
                 PLOTLY_MARKERS[index % len(PLOTLY_MARKERS)],
                 PLOTLY_DASHES[index % len(PLOTLY_DASHES)])


def model_colour(model: str, run_models=()) -> str:
    return model_style(model, run_models).colour
