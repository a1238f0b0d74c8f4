"""Scenarios that only the two-host lab can run (`Scenario.lab_delay_us`: the rtt sweep):
decided at the start of a run. Where the kernel has no netem, or the run is not on the
lab's cluster, they are skipped with the reason (printed, kept in meta.json, shown in the
report), never emulated some other way that would change what is measured."""

from __future__ import annotations


from bench.plan.scenarios import SCENARIOS

from bench.plan.profiles import Profile


def lab_scenarios(profile: Profile) -> list[str]:
    named = [*profile.scenarios, *(leg.scenario for leg in profile.legs)]
    return [n for n in dict.fromkeys(named) if SCENARIOS[n].lab_delay_us is not None]


def problem(cluster_address: str | None) -> str | None:
    """Why the lab scenarios cannot run here, or None."""
    from bench.lab import namespaces

    ok, reason = namespaces.netem_available()
    if not ok:
        return f"needs the kernel's netem qdisc to add delay: {reason}"
    state = namespaces.read_state(namespaces.DEFAULT_STATE_DIR)
    if state is None or not state.get("address"):
        return "runs only in the lab: `python -m bench lab up`, then --cluster ADDRESS"
    if cluster_address != state["address"]:
        return (f"runs only on the lab's cluster ({state['address']}), not on "
                f"{cluster_address or 'this machine alone'}")
    return None


def without_unrunnable(profile: Profile, cluster_address: str | None,
                       out) -> tuple[Profile, dict[str, str]]:
    """The profile without the lab scenarios it cannot run here, and {name: reason}."""
    names = lab_scenarios(profile)
    if not names:
        return profile, {}
    reason = problem(cluster_address)
    if reason is None:
        return profile, {}
    for name in names:
        print(f"skipped scenario {name}: {reason}", file=out, flush=True)
    kept = profile.without(names)
    if kept.empty:
        raise SystemExit(f"nothing left to measure: scenario(s) {', '.join(names)} "
                         f"skipped: {reason}")
    return kept, {name: reason for name in names}


def set_delay(us: int) -> None:
    """Before a lab scenario's point: that much round-trip time between the lab's hosts."""
    from bench.lab import namespaces

    namespaces.set_delay_us(us)
