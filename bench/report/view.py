"""A run as every output sees it: results.csv and meta.json read once, and what is computed
from them computed once — each metric's median, range and worst status per point, the
flags, the claims' verdicts. REPORT.md, report.html, the charts, the terminal summary and
the notebook all render from a `RunView`, never from a run folder, so they cannot
disagree and nothing is read or evaluated twice."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd

from bench.analysis import claims, summary
from bench.plan.scenarios import SCENARIOS
from bench.store import run_folder


@dataclass
class RunView:
    run_dir: Path
    frame: pd.DataFrame  # one row per point and repetition
    meta: dict
    _points: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, run_dir: Path) -> RunView:
        run_dir = Path(run_dir)
        try:
            meta = run_folder.read_meta(run_dir)
        except (OSError, ValueError):
            meta = {}
        return cls(run_dir, run_folder.load_results(run_dir), meta)

    @property
    def charts_dir(self) -> Path:
        return self.run_dir / run_folder.CHARTS

    @cached_property
    def models(self) -> list[str]:
        """Models in the order they were measured (the matrix order)."""
        return summary.models_in_order(self.frame)

    @cached_property
    def scenarios(self) -> list[str]:
        return summary.scenarios_in_order(self.frame)

    @cached_property
    def sweeps(self) -> pd.DataFrame:
        """The rows of scenarios that sweep connections under load (persistent, sessions,
        heavy): the ones the metric charts put on a connections axis."""
        return connection_sweeps(self.frame)

    @cached_property
    def sweep_scenarios(self) -> list[str]:
        return summary.scenarios_in_order(self.sweeps)

    def points(self, metric: str, **equal) -> pd.DataFrame:
        """Per point: median, min, max, spread and worst status of `metric` over its
        repetitions (bench.analysis.summary.aggregate, computed once per metric), keeping
        the points whose columns equal `equal` (a list or set: any of its values)."""
        if metric not in self._points:
            self._points[metric] = summary.aggregate(self.frame, metric)
        data = self._points[metric]
        for column, value in equal.items():
            if isinstance(value, (list, tuple, set, frozenset)):
                data = data[data[column].isin(list(value))]
            else:
                data = data[data[column] == value]
        return data

    def values(self, metric: str, point) -> pd.Series:
        """The repetitions' values of `metric` at the point `point` (a row with the
        point's key columns, e.g. one of `points`)."""
        frame = run_folder.with_key_columns(self.frame)
        mask = pd.Series(True, index=frame.index)
        for key in run_folder.KEY:
            mask &= frame[key] == point[key]
        return frame.loc[mask, metric].dropna() if metric in frame else pd.Series(dtype=float)

    def compare(self, metric: str, a, b) -> summary.Comparison:
        """The exact test of point `a` against point `b` on `metric`."""
        return summary.compare_samples(self.values(metric, a), self.values(metric, b))

    @cached_property
    def flags(self) -> pd.DataFrame:
        return summary.flags(self.frame)

    @cached_property
    def claims(self) -> list[claims.ClaimResult]:
        """Every claim's verdict on this run, evaluated once."""
        return claims.evaluate(self.frame)


def connection_sweeps(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of scenarios that sweep connections under load. The others (idle
    connections, payloads, open-loop rates, idle servers) have their own tables and
    charts. A scenario this version does not know is kept (an older run's)."""
    if frame.empty:
        return frame
    keep = [name for name in frame["scenario"].unique()
            if name not in SCENARIOS or (SCENARIOS[name].axis == "connections"
                                         and SCENARIOS[name].kind == "load")]
    return frame[frame["scenario"].isin(keep)]
