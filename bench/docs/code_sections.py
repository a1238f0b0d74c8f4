"""Sections generated from the code's registries, not from a run: the models, the columns
of results.csv, the profiles and their expected durations (`bench.plan`, the same
arithmetic `bench plan` prints), the scenarios, and what the exact test can reach."""

from __future__ import annotations

import re

from bench.analysis import claims as claim_rules, significance
from bench.docs import fmt
from bench.docs.sources import Reader
from bench.plan import matrix, models, profiles, scenarios
from bench.store import columns

MAKE_TARGETS = {"quick": "make bench-quick", "default": "make bench", "full": "make bench-full"}


def model_table(r: Reader) -> str:
    r.code(models)
    rows = []
    for m in models.MODELS.values():
        started = {models.SERVERS: f"`python -m servers {m.name}`",
                   models.NATIVE_BUILD: "compiled on first use (bench/measure/native/)"}
        rows.append([f"`{m.name}`", m.family, m.waits_in, ", ".join(m.needs),
                     started.get(m.started, m.started)])
    return fmt.table(["model", "family", "how it waits", "needs", "started as"], rows,
                     right=set())


def every_model_matrix(profile: profiles.Profile) -> matrix.Matrix:
    """The profile's matrix on a machine where every registered model runs: the models of
    `python -m servers`, and the native reference where the profile adds it (as `bench
    plan` does)."""
    own = [m.name for m in models.MODELS.values() if m.started == models.SERVERS]
    native = [models.NATIVE] if profile.native_reference else []
    return matrix.build_matrix(profile, own, native)


def _counts(values) -> str:
    return ", ".join(fmt.num(v) for v in values)


def _core(profile: profiles.Profile) -> str:
    t = profile.timing
    return (f"{', '.join(profile.scenarios)} at {_counts(profile.connections)} connections, "
            f"{fmt.count(profile.repetitions, 'repetition')} of {t.warmup_s:g} + "
            f"{t.duration_s:g} s" + (f", plus `{models.NATIVE}`" if profile.native_reference
                                     else ""))


def _leg(leg: profiles.Leg) -> str:
    parts = []
    if leg.connections:
        parts.append(f"N = {_counts(leg.connections)}")
    if leg.idle_connections:
        parts.append(f"M = {_counts(leg.idle_connections)} idle")
    parts.append(", ".join(leg.models) if leg.models else "every model")
    return f"{leg.scenario} ({'; '.join(parts)})"


def durations(r: Reader) -> str:
    """README: the make targets, what each profile runs and how long it is expected to take."""
    r.code(profiles, matrix, models, scenarios)
    rows = []
    for name, profile in profiles.PROFILES.items():
        built = every_model_matrix(profile)
        what = _core(profile)
        if profile.legs:
            what += "; legs: " + ", ".join(leg.scenario for leg in profile.legs)
        rows.append([f"`{MAKE_TARGETS.get(name, f'bench run --profile {name}')}`", f"`{name}`",
                     what, fmt.count(len(built.models), "model"),
                     f"≈ {fmt.seconds(built.expected_seconds())}"])
    return fmt.table(["command", "profile", "what", "models", "expected"], rows, right={3, 4})


def profile_table(r: Reader) -> str:
    """bench/README: each profile's core sweep, its legs and its expected duration."""
    r.code(profiles, matrix, models, scenarios)
    rows = []
    for name, profile in profiles.PROFILES.items():
        built = every_model_matrix(profile)
        legs = "; ".join(_leg(leg) for leg in profile.legs) or "—"
        rows.append([f"`{name}`", _core(profile), legs,
                     f"{fmt.seconds(built.expected_seconds())} ({len(built.points)} points, "
                     f"{len(built.models)} models)"])
    return fmt.table(["profile", "core", "legs (claims subset, server rankings)",
                      "expected (`bench plan`)"],
                     rows, right=set())


def budget(r: Reader, name: str = "default") -> str:
    """Where the default profile's expected time goes, summed as `expected_seconds` sums it
    (the total is checked against it)."""
    r.code(profiles, matrix, scenarios)
    profile = profiles.PROFILES[name]
    built = every_model_matrix(profile)
    t = profile.timing
    parts = built.budget()
    total = sum(seconds for _, seconds in parts.values())
    if abs(total - built.expected_seconds()) > 1e-6:
        raise AssertionError(f"budget {total} != expected_seconds {built.expected_seconds()}")
    what = {
        "load": f"load repetitions: server start {t.server_start_s:g} + warm-up run "
                f"({t.loadgen_start_s:g} start + {t.server_warmup_s:g}) + measured run "
                f"({t.loadgen_start_s:g} start + {t.warmup_s:g} warmup + {t.duration_s:g} "
                f"window), + {t.connect_s_per_1000:g} per 1,000 connections held",
        "longer windows": "open-loop windows beyond the profile's, to hold "
                          f"{scenarios.WINDOW_REQUESTS:,} requests (rates estimated from a "
                          f"{t.ceiling_estimate_rps:,.0f} req/s client ceiling)",
        "capacity": f"capacity searches: a fresh server, then about "
                    f"{t.capacity_trials_estimate} trials (load windows) each",
        "exact syscalls": f"syscalls, exact: {t.exact_syscalls_s:g} s of bracketed round "
                          "trips in every repetition",
        "separate syscalls": f"syscalls, a separate window once per point: "
                             f"{t.loadgen_start_s:g} + {t.syscall_warmup_s:g} + "
                             f"{t.syscall_window_s:g}",
        "idle": f"idle-server repetitions: start {t.server_start_s:g} + settle "
                f"{t.idle_settle_s:g} + {t.idle_sample_s:g} sampled",
        "report": "charts and report",
    }
    rows = [[what[name], fmt.num(count), fmt.num(seconds / count, 1) if count else "–",
             fmt.num(seconds)] for name, (count, seconds) in parts.items() if count]
    rows.append(["**expected**", "", "", f"**≈ {fmt.seconds(total)}**"])
    return fmt.table(["what", "measurements", "seconds each (mean)", "seconds"], rows,
                     right={1, 2, 3})


def column_glossary(r: Reader) -> str:
    r.code(columns)
    rows = [[f"`{c.name}`", c.unit or "", c.meaning + (" (a point's key)" if c.kind ==
                                                        columns.KEY else "")]
            for c in columns.COLUMNS]
    return fmt.table(["column", "unit", "meaning"], rows, right=set())


def _claims_of(name: str) -> list[str]:
    numbers = []
    for claim in claim_rules.CLAIMS:
        if name in re.findall(r"'([\w-]+)'", claim.needs):
            numbers.append(str(claim.number))
    return numbers


def scenario_table(r: Reader) -> str:
    r.code(scenarios, claim_rules)
    rows = []
    for name, s in scenarios.SCENARIOS.items():
        rows.append([f"`{name}`", s.description, s.axis, ", ".join(_claims_of(name))])
    return fmt.table(["scenario", "what", "its tables' axis", "claims"], rows, right=set())


def statistics(r: Reader) -> str:
    r.code(significance, profiles)
    reach = ", ".join(f"{significance.min_p(n, n):.2g} at {n} against {n}" for n in (3, 4, 5))
    return (f"the smallest two-sided p the exact test can reach is {reach}; at "
            f"α = {significance.ALPHA:g} a difference needs at least "
            f"{significance.needed_repetitions()} repetitions a side, and the default profile "
            f"runs {profiles.PROFILES['default'].repetitions}")


def slowloris_scenario(r: Reader) -> str:
    r.code(scenarios)
    s = scenarios.SCENARIOS["slowloris"]
    return (f"p99 and throughput of {_counts(s.connections)} active clients beside "
            f"{_counts(s.idle_connections)} stalled connections, every model")


def exact_limit(r: Reader) -> str:
    r.code(significance)
    return (f"Beyond {significance.EXACT_MAX_VALUES} pooled values p is a Monte Carlo estimate "
            f"over {significance.MC_DRAWS:,} random splits with a fixed seed, labelled so; the "
            f"bench would need {significance.EXACT_MAX_VALUES // 2 + 1} repetitions a side to "
            "get there")


def native_size(r: Reader) -> str:
    path = r.sources.root / "bench" / "measure" / "native" / "epoll_server.c"
    text = r.text(path)
    return f"{len(text.splitlines())} lines" if text is not None else "(source not found)"


def default_repetitions(r: Reader) -> str:
    r.code(profiles)
    return str(profiles.PROFILES["default"].repetitions)
