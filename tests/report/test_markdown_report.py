"""REPORT.md's parts that need no run: the command that reproduces a run."""


def test_reproduce_command_drops_where_results_went():
    from bench.report.markdown_report import reproduce_command

    meta = {"command": ["/x/python", "-m", "bench", "run", "--profile", "quick", "--models",
                        "epoll", "--results", "/tmp/r", "--no-progress"],
            "profile": {"name": "quick"}}
    assert reproduce_command(meta) == "python -m bench run --profile quick --models epoll"
