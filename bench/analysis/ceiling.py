"""The native reference (`native-epoll`, a C epoll server) as a ceiling: each model's
server CPU per request as a multiple of the native server's, point by point. A ceiling for
CPU per request only: on few cores the Python load generator cannot drive the native
server to its throughput limit, so its throughput is no ceiling. It joins no claim."""

from __future__ import annotations

import pandas as pd

from bench.plan.models import NATIVE
from bench.store import status

COLUMN = "server_cpu_us_per_req"
NOTE = ("native-epoll (C, dashed): a ceiling for CPU per request, not for throughput; "
        "the Python load generator cannot saturate it on few cores")


def multiples(frame: pd.DataFrame, scenario: str = "persistent") -> pd.DataFrame:
    """Rows: models; columns: connection counts; cells: median CPU/request of the model
    divided by native-epoll's median at the same count (NaN where either is missing)."""
    if frame.empty or COLUMN not in frame or NATIVE not in set(frame["model"]):
        return pd.DataFrame()
    # a starved point's CPU per request is still its cost per served request
    rows = frame[(frame["scenario"] == scenario)
                 & frame["status"].isin([*status.SERVED, "starved"])]
    medians = rows.groupby(["model", "connections"])[COLUMN].median().unstack("connections")
    if NATIVE not in medians.index:
        return pd.DataFrame()
    native = medians.loc[NATIVE]
    return medians.drop(index=NATIVE).div(native, axis="columns")


def section(frame: pd.DataFrame) -> list[str]:
    """REPORT.md lines: the multiples table, or one line saying why there is none."""
    table = multiples(frame)
    if table.empty:
        return ["No native-epoll points in this run (no C compiler, or `--models` left it "
                "out)."]
    order = [m for m in dict.fromkeys(frame["model"]) if m in table.index]
    counts = list(table.columns)
    lines = ["Server CPU per request of each model as a multiple of the native C epoll "
             "server's, at each connection count of the persistent sweep (medians over "
             f"repetitions; 1.0x = as cheap as C). {NOTE}.", "",
             "| model | " + " | ".join(f"N={int(c):,}" for c in counts) + " |",
             "|---|" + "---:|" * len(counts)]
    for model in order:
        cells = [f"{v:.1f}x" if v == v else "—" for v in table.loc[model, counts]]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return lines
