"""Every figure REPORT.md quotes is the median over the point's repetitions, and a
difference between models is only called a result when their repetitions do not overlap."""

import pandas as pd

from bench.report import statements, tables

from tests.helpers.report_frames import frame, point, read_back

# threaded starved 532, 567, 544 connections in its three repetitions: the median is 544
STARVED = [532, 567, 544]


def starved_run(tmp_path) -> pd.DataFrame:
    return read_back(tmp_path, frame(
        point("threaded", connections=1000, status="starved", starved_connections=STARVED,
              fairness_jain=[0.40, 0.38, 0.41], errors=[0, 9, 3], rps=[42_000, 41_000, 38_000],
              note="532 of 1000 connections got no response in the window"),
        point("epoll", connections=1000, rps=[80_000, 81_000, 82_000])))


def test_starved_statement_quotes_the_median_count_with_its_range(tmp_path):
    data = starved_run(tmp_path)
    (sentence,) = [s for s in statements.statements(data)
                   if s.startswith("threaded (persistent) starved")]
    assert ", 544 got no response" in sentence, sentence
    assert "532–567" in sentence and "Jain fairness 0.400" in sentence


def test_flags_table_quotes_median_starved_and_errors(tmp_path):
    flagged = starved_run(tmp_path).flags.set_index("model").loc["threaded"]
    assert flagged["starved_connections"] == 544 and flagged["errors"] == 3
    assert (flagged["starved_low"], flagged["starved_high"]) == (532, 567)
    table = tables.flags_section(starved_run(tmp_path))
    (row,) = [line for line in table.splitlines() if line.startswith("| threaded")]
    assert "| 544 (532–567) | 3 (0–9) |" in row, row


def test_memory_and_threads_statement_quotes_medians(tmp_path):
    data = read_back(tmp_path, frame(
        point("forking", threads=[1, 9, 3], rss_bytes=[2**20 * 10, 2**20 * 90, 2**20 * 30]),
        point("epoll", threads=1, rss_bytes=2**20 * 5)))
    (sentence,) = [s for s in statements.statements(data) if s.startswith("Most threads")]
    assert "forking with 3 at" in sentence and "30.0 MiB" in sentence, sentence


def test_the_open_loop_and_peak_figures_are_medians(tmp_path):
    data = read_back(tmp_path, frame(
        point("epoll", rps=[100, 300, 200]),
        point("epoll", connections=10, rps=[50, 70, 60])))
    peak = tables.peak_table(data)
    assert "| persistent | epoll | 200 | 100–300 | 100 | 3.3× (10) |" in peak, peak


def test_a_fastest_model_within_noise_is_not_called_a_win(tmp_path):
    data = read_back(tmp_path, frame(
        point("select", rps=[100_000, 120_000, 110_000], p99_us=[300, 500, 400]),
        point("poll", rps=[95_000, 115_000, 105_000], p99_us=[350, 450, 420])))
    (ranking,) = [s for s in statements.statements(data) if s.startswith("**persistent")]
    assert "the runner-up poll" in ranking and "no difference shown" in ranking
    assert "1.0× the slowest (poll, 105,000 req/s) (inconclusive: undecidable at n=3+3 " \
           "(needs >= 4 per side))" in ranking, ranking
    (p99,) = [s for s in statements.statements(data) if "lowest p99" in s]
    assert "inconclusive" in p99


def test_a_clear_difference_says_so_with_the_exact_test(tmp_path):
    data = read_back(tmp_path, frame(
        point("select", reps=5, rps=[200_000, 210_000, 205_000, 201_000, 209_000]),
        point("poll", reps=5, rps=[95_000, 115_000, 105_000, 99_000, 111_000])))
    (ranking,) = [s for s in statements.statements(data) if s.startswith("**persistent")]
    assert "inconclusive" not in ranking
    assert "it beat the runner-up poll (105,000 req/s median; exact rank-sum p = 0.0079)" \
        in ranking, ranking


def test_ranges_apart_at_three_repetitions_are_not_called_a_win(tmp_path):
    """Every repetition of select above every one of poll, but 3 vs 3 cannot reach p < 0.05."""
    data = read_back(tmp_path, frame(
        point("select", rps=[200_000, 210_000, 205_000]),
        point("poll", rps=[95_000, 115_000, 105_000])))
    (ranking,) = [s for s in statements.statements(data) if s.startswith("**persistent")]
    assert "beat" not in ranking and "undecidable at n=3+3" in ranking


def test_ratio_sentence_says_inconclusive_unless_the_exact_test_shows_a_difference(tmp_path):
    data = read_back(tmp_path, frame(
        point("epoll", rps=[100_000, 120_000, 110_000]),
        point("uvloop", rps=[105_000, 125_000, 115_000])))
    sentence = statements.ratio_sentence(data.frame)
    assert "0.96×" in sentence and "inconclusive" in sentence
    apart = read_back(tmp_path / "b", frame(
        point("epoll", reps=5, rps=[70_000, 72_000, 71_000, 70_500, 71_500]),
        point("uvloop", reps=5, rps=[105_000, 125_000, 115_000, 110_000, 120_000])))
    assert "epoll below uvloop, exact rank-sum p = 0.0079" in \
        statements.ratio_sentence(apart.frame)


def test_a_single_repetition_is_not_a_result(tmp_path):
    data = read_back(tmp_path, frame(point("select", reps=1, rps=200_000),
                                     point("poll", reps=1, rps=100_000)))
    (ranking,) = [s for s in statements.statements(data) if s.startswith("**persistent")]
    assert "inconclusive: undecidable at n=1+1" in ranking
