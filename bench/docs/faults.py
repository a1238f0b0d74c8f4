"""The README's fault table, from the fault suite's summary (`make faults` writes
results/faults/faults.json; tests/helpers/faults_summary.py says what is in it). A model a test
did not run reads "not in the suite"; a file that is not there reads "not measured yet"."""

from __future__ import annotations

from bench.docs import fmt
from bench.docs.sources import ABSENT, Reader
from bench.plan import models as registry

NOT_RUN = "not in the suite"


def _ms(seconds) -> str:
    if not fmt.ok(seconds):
        return "no answer"
    return f"{fmt.num(seconds * 1000, 1)} ms" if seconds < 1 else f"{fmt.num(seconds, 2)} s"


def _growth(growth: dict) -> str:
    names = {"uss_bytes": "USS", "pss_bytes": "PSS", "parent_rss_bytes": "parent RSS"}
    return ", ".join(f"{names.get(k, k)} {'+' if v >= 0 else '−'}{abs(v) * 100:.1f} %"
                     for k, v in growth.items())


def _slowloris(f: dict | None) -> str:
    if f is None:
        return NOT_RUN
    if f.get("accepted_s") is None:
        return f"{fmt.num(f['stalled'])} stalled: not all accepted"
    again = "" if f.get("answered_again_s") is not None else "; no answer once they closed"
    return f"{fmt.num(f['stalled'])}: {_ms(f.get('fresh_answer_s'))}{again}"


def _descriptors(f: dict | None) -> str:
    if f is None:
        return NOT_RUN
    events = f.get("events") or {}
    shed = ", ".join(f"{fmt.num(v)} `{k}`" for k, v in events.items()) or "no marker"
    text = f"{fmt.num(f['connected'])} connected, {shed}"
    if not events and f.get("not_seen_by_the_model"):
        text += f" ({f['not_seen_by_the_model']})"
    return text + f"; answered again after {_ms(f.get('answered_again_s'))}"


def _soak(f: dict | None) -> str:
    if f is None:
        return NOT_RUN
    return (f"{fmt.num(f['requests'] / 1e6, 2)} M requests, {fmt.num(f['errors'])} errors, "
            + _growth(f.get("growth", {})))


def _streams(f: dict | None) -> str:
    if f is None:
        return NOT_RUN
    return f"all {fmt.num(f['examples'])} passed" if f.get("passed") else \
        f"failed: {f.get('failure', '?')}"


def sizes(doc: dict) -> str:
    s = doc.get("sizes", {})
    parts = []
    if "slowloris" in s:
        x = s["slowloris"]
        parts.append(f"slowloris: {fmt.num(x['stalled'])} stalled connections "
                     f"({fmt.num(x['stalled_select'])} for select), a fresh client must be "
                     f"answered within {x['fresh_answer_limit_s']:g} s")
    if "descriptors" in s:
        x = s["descriptors"]
        parts.append(f"descriptors: RLIMIT_NOFILE {fmt.num(x['nofile'])}, "
                     f"{fmt.num(x['attempts'])} connection attempts")
    if "soak" in s:
        x = s["soak"]
        parts.append(f"churn: {fmt.num(x['connections'])} connections, "
                     f"{fmt.num(x['requests_per_connection'])} requests each, closed with RST, "
                     f"for {x['seconds']:g} s; memory at second {x['first_sample_s']:g} and at "
                     "the end")
    if "streams" in s:
        parts.append(f"bad streams: {fmt.num(s['streams']['examples'])} per model")
    host = doc.get("host", {})
    return (f"`{doc.get('command', 'make faults')}`, {doc.get('started_utc', '?')} to "
            f"{doc.get('finished_utc', '?')}, commit {str(doc.get('git', {}).get('commit'))[:7]}"
            + (" (with uncommitted changes)" if doc.get("git", {}).get("dirty") else "")
            + f", {host.get('cpus', '?')} CPUs, Linux {host.get('kernel', '?')}. Sizes: "
            + "; ".join(parts) + ".")


def table(r: Reader) -> str:
    doc = r.json(r.sources.faults)
    if doc is None:
        return (f"*{ABSENT}*: `{r.name(r.sources.faults)}` is not in the repository. Run "
                "`make faults` (the fault suite at full size; it writes that file), commit "
                "it, then `make docs`.")
    tests = doc.get("tests", {})
    models = [m for m in registry.MODELS if any(m in t for t in tests.values())]
    rows = [[f"`{m}`", _slowloris(tests.get("slowloris", {}).get(m)),
             _descriptors(tests.get("descriptors", {}).get(m)),
             _soak(tests.get("soak", {}).get(m)), _streams(tests.get("streams", {}).get(m))]
            for m in models]
    return sizes(doc) + "\n\n" + fmt.table(
        ["model", "slowloris: stalled held, fresh client answered after",
         "descriptors: connected, shed, answered again", "churn: requests, errors, memory growth",
         "bad streams"], rows, right=set())
