"""The slowloris scenario has its line in the report: the active clients' throughput and
p99 at the most stalled connections against none stalled, and who could not hold them."""

from bench.report import statements

from tests.helpers.report_frames import frame, point, read_back


def test_the_report_says_how_each_model_held_the_stalled_connections(tmp_path):
    data = read_back(tmp_path, frame(
        point("epoll", "slowloris", 4, idle_connections=0, rps=[1000.0, 1100.0, 900.0]),
        point("epoll", "slowloris", 4, idle_connections=2000, rps=[950.0, 900.0, 1000.0],
              p99_us=[300.0, 310.0, 320.0]),
        point("select", "slowloris", 4, idle_connections=0, rps=1000.0),
        point("select", "slowloris", 4, idle_connections=2000, rps=200.0,
              status=["refused", "refused", "ok"])))
    lines = [line for line in statements.statements(data) if "slowloris" in line]
    assert len(lines) == 1
    line = lines[0]
    assert "beside 2,000 stalled connections" in line
    assert "epoll 0.95× its throughput with none stalled, p99 310 µs" in line
    assert "select 0.20× its throughput with none stalled" in line and "refused" in line
    assert line.index("epoll") < line.index("select")  # the one that held them first
