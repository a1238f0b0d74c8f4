"""A saturated client (client cores >= 85 % busy) makes a point's throughput a floor: a
point is client-bound when most of its repetitions were saturated (or it reached the
client's ceiling); its throughput reads '≥ N' and is never ranked, the report says which
figures are floors and what the client cores were doing; the plots agree. Saturation is
shown once, by the band and the mark, not flagged point by point."""

import matplotlib.pyplot as plt

from bench.report import plots, statements, tables
from bench.store.columns import column

from tests.helpers.report_frames import frame, point, read_back


def saturated_run(tmp_path, flags=(True, True, False)):
    return read_back(tmp_path, frame(
        point("nonblocking", rps=[150_000, 152_000, 151_000], client_saturated=list(flags),
              client_core_busy_pct=[91.0, 93.0, 80.0], client_core_steal_pct=[3.0, 4.0, 2.0],
              loadgen_saturated=False),
        point("epoll", rps=[90_000, 92_000, 91_000], client_core_busy_pct=[70.0, 72.0, 71.0],
              client_core_steal_pct=0.0, loadgen_saturated=[True, True, True])))


def test_a_point_is_saturated_when_most_repetitions_were(tmp_path):
    most = saturated_run(tmp_path).points("rps").set_index("model")
    assert bool(most.loc["nonblocking", "client_saturated"])
    assert most.loc["nonblocking", "saturated_reps"] == 2
    assert most.loc["nonblocking", "client_core_busy_pct"] == 91.0
    assert not bool(most.loc["epoll", "client_saturated"])  # loadgen_saturated is not it
    few = saturated_run(tmp_path / "b", (True, False, False)).points("rps")
    assert not few.set_index("model").loc["nonblocking", "client_saturated"]


def test_a_saturated_client_is_not_flagged_point_by_point(tmp_path):
    text = tables.flags_section(saturated_run(tmp_path))
    assert text.startswith("No point was flagged"), text
    assert "at least 85 % busy" in text and "throughput is a floor" in text
    assert "reads '≥ N' (client-bound) and is never ranked" in text


def test_a_minority_of_saturated_repetitions_is_not_flagged(tmp_path):
    text = tables.flags_section(saturated_run(tmp_path, (True, False, False)))
    assert text.startswith("No point was flagged"), text


def test_a_client_bound_throughput_is_never_the_fastest(tmp_path):
    (ranking,) = [s for s in statements.statements(saturated_run(tmp_path))
                  if s.startswith("**persistent")]
    assert "the fastest model was **epoll** at 91,000 req/s" in ranking, ranking
    assert ("not ranked because the client, not the server, was their limit: nonblocking "
            "(≥ 151,000 req/s)") in ranking, ranking


def test_peak_table_and_metric_tables_mark_floors(tmp_path):
    data = saturated_run(tmp_path)
    peak = tables.peak_table(data)
    assert "| persistent | nonblocking | ≥ 151,000 |" in peak and "floor" in peak
    table = tables.metric_table(data, "persistent", column("rps"))
    assert "≥ 151,000 ±1%" in table and "91,000 ±1% |" in table
    minority = tables.metric_table(saturated_run(tmp_path / "b", (True, False, False)),
                                   "persistent", column("rps"))
    assert "*" not in minority and "≥" not in minority
    busy = tables.metric_table(data, "persistent", column("client_core_busy_pct"))
    assert "| nonblocking | 91 ±7% * |" in busy


def test_ratio_sentence_shows_the_client_cores_behind_the_floor(tmp_path):
    data = saturated_run(tmp_path)
    sentence = statements.ratio_sentence(data.frame, "nonblocking", "epoll")
    assert "saturated in 2 of nonblocking's 3 repetitions (client cores 91 % busy" in sentence


def test_plots_mark_only_majority_saturated_points(tmp_path):
    for flags, marked in (((True, True, False), True), ((True, False, False), False)):
        data = saturated_run(tmp_path / str(marked), flags)
        fig, ax = plt.subplots()
        shown = plots.draw_metric(ax, data.points("rps", scenario="persistent"), None,
                                  column("rps"), "persistent",
                                  ["nonblocking", "epoll"])
        plt.close(fig)
        assert (plots.SATURATED in shown) == marked


def test_two_floors_are_never_ranked_against_each_other(tmp_path):
    data = read_back(tmp_path, frame(
        point("nonblocking", reps=5, rps=[150_000, 152_000, 151_000, 150_500, 151_500],
              client_saturated=True, client_core_busy_pct=90.0),
        point("poll", reps=5, rps=[90_000, 92_000, 91_000, 90_500, 91_500],
              client_saturated=True, client_core_busy_pct=88.0)))
    (ranking,) = [s for s in statements.statements(data) if s.startswith("**persistent")]
    assert "every model that served all its connections reached the client's ceiling" \
        in ranking and "rank the client, not the servers" in ranking, ranking
    assert "fastest" not in ranking


def test_a_point_with_an_uncertain_saturation_is_flagged_with_its_count(tmp_path):
    data = read_back(tmp_path, frame(
        point("epoll", rps=[90_000, 91_000, 92_000], client_core_busy_pct=[84.9, 80.0, 80.0],
              client_saturation=["uncertain", "no", "no"],
              client_core_busy_resolution_pct=0.3)))
    (row,) = [line for line in tables.flags_section(data).splitlines()
              if line.startswith("| epoll")]
    assert "uncertain in 1 of 3" in row
    assert "uncertain" in tables.flags_section(data) and data.flags["uncertain_reps"].iloc[0] == 1
