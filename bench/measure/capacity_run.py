"""One capacity search on one fresh server: the search (capacity_search.py) picks the
offered rates, each trial is one open-loop load window on the running server, and the
repetition's row is the highest passing trial's with the search's answer beside it.

Where the search starts: from what this run already knows about the model, so it needs few
probes. The highest equal-load rate every repetition of the model met the SLO at (the next
rate of that ladder, twice as high, is then usually the first to fail); else half its own
closed-loop throughput at 100 connections; else a tenth of the client's ceiling. Rates
never exceed the client's ceiling, and a start that fails steps down (halving) no lower than
FLOOR_SHARE of the ceiling."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from bench.measure.capacity_search import search
from bench.plan.matrix import Point
from bench.plan.models import NATIVE
from bench.plan.slo import CLIENT_FLOOR_FACTOR, SLO, Capacity, Trial, meets
from bench.store import run_folder, status

FLOOR_SHARE = 1 / 64  # the lowest rate a failing start steps down to, of the ceiling
TRIALS_PER_PROBE = 2
MAX_PROBES = 12
WIDTH = 0.05
START_FROM = ("persistent", 100)  # half the model's throughput here, without equal load


@dataclass
class CapacityRun:
    """The search on one running server; `run()` returns the repetition's row.
    `measure(rate, label)` runs one load window on it and returns that window's row;
    `failed(note)` is a failed row of this repetition."""

    run_dir: Path
    point: Point
    repetition: int
    slo: SLO
    ceiling_rps: float
    measure: Callable[[float, str], dict]
    failed: Callable[[str], dict]
    rows: list[dict] = field(default_factory=list)  # every trial's row, in order
    floor: list[tuple[float, float]] | None = None  # (offered, native p99), set by run()

    def run(self) -> dict:
        self.floor = self.client_floor()
        start = self.start_rps()
        result = search(self.trial, start_rps=start, ceiling_rps=self.ceiling_rps,
                        slo=self.slo, width=WIDTH, trials_per_probe=TRIALS_PER_PROBE,
                        max_probes=MAX_PROBES, floor_rps=self.ceiling_rps * FLOOR_SHARE)
        return self.row(result, start)

    def trial(self, rate: float) -> Trial:
        """One open-loop window at `rate` on the running server."""
        label = f"-t{len(self.rows) + 1}"
        row = self.measure(rate, label)
        row["_rate"] = rate  # as offered (the load generator is given it to 0.1 req/s)
        self.rows.append(row)
        served = row["status"] != "failed" and row.get("rps") == row.get("rps")
        errors = row.get("errors")
        trial = Trial(rate, float(row["rps"]) if served else 0.0,
                      float(row["p99_us"]) if served else math.nan,
                      int(errors) if errors == errors and errors is not None else 1)
        return replace(trial, client_bound=self.client_bound(trial, row))

    def client_bound(self, trial: Trial, row: dict) -> bool:
        """The client, not the server, was the limit of this trial: its core saturated,
        or it failed the SLO on a p99 within CLIENT_FLOOR_FACTOR of the client's own latency
        floor at that rate (native-epoll's p99 at equal load), which no server behind this
        client could have met either."""
        if row.get("client_saturation") == "yes":
            return True
        floor = self.floor_at(trial.offered_rps)
        return (floor is not None and not meets(trial, self.slo)
                and trial.p99_us <= CLIENT_FLOOR_FACTOR * floor)

    def client_floor(self) -> list[tuple[float, float]]:
        """(offered rate, native-epoll's median p99) of this run's equal-load points."""
        frame = run_folder.load_results(self.run_dir)
        if frame.empty:
            return []
        native = frame[(frame["model"] == NATIVE) & (frame["scenario"] == "equal-load")
                       & (frame["payload_bytes"] == self.point.payload_bytes)
                       & frame["status"].isin(status.SERVED)]
        medians = native.groupby("offered_rps")["p99_us"].median().dropna()
        return [(float(rate), float(p99)) for rate, p99 in medians.items()]

    def floor_at(self, rate: float) -> float | None:
        """The client's p99 floor at `rate`: interpolated on log-log axes between the
        equal-load rates, the nearest one's outside them; None without equal load."""
        if not self.floor:
            return None
        rates = np.log([r for r, _ in self.floor])
        p99s = np.log([p for _, p in self.floor])
        return float(np.exp(np.interp(math.log(rate), rates, p99s)))

    def start_rps(self) -> float:
        """The first rate to offer (the module's docstring says how it is chosen)."""
        frame = run_folder.load_results(self.run_dir)
        if not frame.empty:
            mine = frame[(frame["model"] == self.point.model)
                         & (frame["payload_bytes"] == self.point.payload_bytes)
                         & (frame["connections"] == self.point.connections)]
            passed = self._equal_load_passes(mine[mine["scenario"] == "equal-load"])
            if passed:
                return max(passed)
            closed = mine[(mine["scenario"] == START_FROM[0])
                          & (mine["connections"] == START_FROM[1])
                          & mine["status"].isin(status.SERVED)]["rps"].dropna()
            if not closed.empty:
                return min(self.ceiling_rps, 0.5 * float(closed.median()))
        return self.ceiling_rps / 10

    def _equal_load_passes(self, rows) -> list[float]:
        """The equal-load rates at which every repetition met the SLO."""
        passes = []
        for rate, group in rows.groupby("offered_rps"):
            trials = [Trial(rate, r.rps, r.p99_us, int(r.errors) if r.errors == r.errors
                            else 1) for r in group.itertuples()]
            if trials and all(meets(t, self.slo) for t in trials):
                passes.append(float(rate))
        return passes

    def row(self, result: Capacity, start: float) -> dict:
        """The highest passing trial's row (else the last trial's), with the answer, and
        every trial in capacity_detail; the other trials' histograms are removed."""
        chosen = self._reported_row(result)
        for row in self.rows:
            if row is not chosen and row.get("histogram"):
                (self.run_dir / row["histogram"]).unlink(missing_ok=True)
        if chosen.get("histogram"):  # stored under the repetition's own name
            folder = self.run_dir
            name = run_folder.write_histogram(
                folder, self.point.point_id, self.repetition,
                (folder / chosen["histogram"]).read_text().strip())
            (folder / chosen["histogram"]).unlink(missing_ok=True)
            chosen["histogram"] = name
        answer = result.row()
        answer.pop("capacity_text", None)  # derived from the three columns
        chosen.update(answer)
        chosen["capacity_start_rps"] = start
        chosen["capacity_detail"] = json.dumps([self._trial_summary(r) for r in self.rows])
        chosen["note"] = "; ".join(n for n in (chosen.get("note", ""),
                                               f"capacity: {result.text()}: {result.reason}")
                                   if n)
        chosen["offered_rps"] = chosen.pop("_rate", math.nan)
        for row in self.rows:
            row.pop("_rate", None)
        return chosen

    def _reported_row(self, result: Capacity) -> dict:
        if not self.rows:  # no trial ran (the search refused its settings): a failed row
            return self.failed("no capacity trial ran")
        passing = [r for r in self.rows if r["_rate"] == result.low_rps
                   and meets(self._as_trial(r), self.slo)]
        return passing[-1] if passing else self.rows[-1]

    @staticmethod
    def _as_trial(row: dict) -> Trial:
        errors = row.get("errors")
        return Trial(row.get("_rate") or 0.0, row.get("rps", math.nan),
                     row.get("p99_us", math.nan),
                     int(errors) if errors == errors and errors is not None else 1)

    def _trial_summary(self, row: dict) -> dict:
        verdict = meets(self._as_trial(row), self.slo)
        return {"offered_rps": row.get("_rate"), "achieved_rps": _finite(row.get("rps")),
                "p99_us": _finite(row.get("p99_us")), "errors": _finite(row.get("errors")),
                "client_saturation": row.get("client_saturation", ""),
                "passed": bool(verdict), "why": verdict.reason}


def _finite(value):
    """A number for JSON: None where there is none (NaN is not JSON)."""
    return None if value is None or value != value else value
