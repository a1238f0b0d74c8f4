"""Keep `make microbench`'s JSON small: pytest-benchmark's --benchmark-json includes every
timing of every round (tens of MB); the stored file keeps the statistics only."""


def pytest_benchmark_update_json(config, benchmarks, output_json):
    for bench in output_json.get("benchmarks", []):
        bench.get("stats", {}).pop("data", None)
