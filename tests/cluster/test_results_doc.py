"""docs/results.md's sentence on the local Dask cluster against one machine says what the
exact rank-sum test over the committed runs says (results/reference/three-placements/: the
first run on one machine, the second on `bench cluster local`): a p of 0.095 is "no
difference shown at this n", quoted with its p and ratio, never "adds nothing"."""

from __future__ import annotations

import json
import statistics

import pandas as pd

from bench.analysis.significance import rank_sum_test
from bench.measure.environment import PROJECT_ROOT

RUNS = PROJECT_ROOT / "results" / "reference" / "three-placements"


def _section() -> str:
    text = (PROJECT_ROOT / "docs" / "results.md").read_text()
    start = text.index("## One point, three placements")
    return " ".join(text[start:text.index("\n## ", start + 3)].split())


def test_the_local_cluster_sentence_quotes_the_test_not_a_verdict_it_does_not_reach():
    one, local = sorted(p for p in RUNS.iterdir() if p.is_dir())[:2]
    assert json.loads((one / "meta.json").read_text()).get("cluster") is None
    assert json.loads((local / "meta.json").read_text())["cluster"]["scheduler"]
    a, b = pd.read_csv(one / "results.csv"), pd.read_csv(local / "results.csv")
    section = _section()
    assert "adds nothing" not in section and "within the noise" not in section
    for model in ("epoll", "threaded"):
        quoted = model + " no difference shown at this n (p = {p:.3f}; {ratio:.2f}×)"
        x, y = list(a[a.model == model]["rps"]), list(b[b.model == model]["rps"])
        test = rank_sum_test(x, y)
        ratio = statistics.median(y) / statistics.median(x)
        assert test.p >= 0.05  # nothing shown: the sentence must not claim a result
        assert quoted.format(p=test.p, ratio=ratio) in section, quoted.format(p=test.p,
                                                                             ratio=ratio)
    assert "no difference shown at this n" in section
