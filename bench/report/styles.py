"""How each model looks in every chart (PNG and the interactive report alike): the colour of
its family (bench.plan.models), so a reader sees the design at a glance, and within a
family a distinct marker, line style and shade, so no two models of a run look the same
even in greyscale. A `--server` model (family external) is numbered among the run's
external models, so two of them never share a marker."""

from __future__ import annotations

from dataclasses import dataclass

from bench.plan import models

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


def _shade(colour: str, amount: float) -> str:
    """Lighter (amount > 0, towards white) or darker (amount < 0, towards black)."""
    rgb = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    target = 255 if amount > 0 else 0
    mixed = [round(c + (target - c) * abs(amount)) for c in rgb]
    return "#" + "".join(f"{c:02x}" for c in mixed)


def model_style(model: str, run_models=()) -> Style:
    """The style of `model`; `run_models` (every model of the run) numbers the external
    ones so that two `--server` models never share a marker."""
    family = models.family_of(model)
    if family == models.EXTERNAL:
        external = sorted({m for m in run_models if models.family_of(m) == family} | {model})
        index = external.index(model)
    else:
        index = models.family_members(family).index(model)
    colour = models.FAMILIES[family].colour
    return Style(family, _shade(colour, SHADES[index % len(SHADES)]),
                 MARKERS[index % len(MARKERS)], DASHES[index % len(DASHES)],
                 PLOTLY_MARKERS[index % len(PLOTLY_MARKERS)],
                 PLOTLY_DASHES[index % len(PLOTLY_DASHES)])


def model_colour(model: str, run_models=()) -> str:
    return model_style(model, run_models).colour
