#!/usr/bin/env bash
# One point measured three ways, side by side in one sitting: on one machine, on a Dask
# cluster on this machine (`bench cluster local`), and across the two-host lab (`bench lab
# up`, root) at two rate limits; then the lab with 200 us of added round trip, which needs
# the kernel's netem (refused with the reason where it is missing).
#   sudo benchmarks/three_placements.sh [RESULTS_DIR]
# Each run's placement (and the lab's rate) goes into RESULTS_DIR/placements.json, which
# `make docs` reads beside the runs' own meta.json; docs/results.md cites
# results/reference/three-placements/, so to refresh it pass that folder.
set -u
cd "$(dirname "$0")/.."
PY=.venv/bin/python
OUT=${1:-results/three-placements}
ARGS=(--profile quick --models epoll,threaded --scenarios persistent --connections 100
      --repetitions 5 --duration 1.0 --warmup 0.2 --server-warmup 0.2 --no-progress
      --no-report --results "$OUT")
mkdir -p "$OUT"
# record PLACEMENT [KEY=NUMBER ...]: the run just made (run ids sort by their start) into
# the index, with the lab's settings (rate_mbit=R, delay_us=D)
record() {
    local run
    run=$(find "$OUT" -mindepth 1 -maxdepth 1 -type d -newer "$STAMP" -printf '%f\n' | sort | tail -1)
    [ -n "$run" ] || { echo "   (no run folder made: nothing recorded)"; return; }
    $PY - "$OUT/placements.json" "$run" "$@" <<'PYEOF'
import json, sys
from pathlib import Path
index, run, placement = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
doc = json.loads(index.read_text()) if index.exists() else {
    "what": "the placement of each run in this folder (benchmarks/three_placements.sh)",
    "runs": []}
entry = {"run": run, "placement": placement}
entry.update((k, int(v)) for k, v in (arg.split("=", 1) for arg in sys.argv[4:]))
doc["runs"] = [e for e in doc["runs"] if e["run"] != run] + [entry]
index.write_text(json.dumps(doc, indent=1) + "\n")
PYEOF
}
STAMP=$(mktemp)
echo "== one machine"; touch "$STAMP"; $PY -m bench run "${ARGS[@]}" 2>&1 | tail -2
record "one machine"
echo "== local cluster"
ADDR_FILE=$(mktemp)
$PY -m bench cluster local > "$ADDR_FILE" 2>/dev/null & CLUSTER=$!
for _ in $(seq 120); do [ -s "$ADDR_FILE" ] && break; sleep 0.5; done
touch "$STAMP"; $PY -m bench run "${ARGS[@]}" --cluster "$(tail -1 "$ADDR_FILE")" 2>&1 | tail -2
record "local Dask cluster"
kill -TERM "$CLUSTER"; wait "$CLUSTER"; rm -f "$ADDR_FILE"
for RATE in 1000 200; do
    echo "== lab, $RATE Mbit/s"
    ADDR=$($PY -m bench lab up --rate-mbit "$RATE" | tail -1)
    touch "$STAMP"; $PY -m bench run "${ARGS[@]}" --cluster "$ADDR" 2>&1 | tail -2
    record lab "rate_mbit=$RATE"
    $PY -m bench lab down
done
echo "== lab, 200 us added round trip"
# the lab's exit status decides (through a pipe to tail it would be tail's, always 0, and
# an empty --cluster would measure on one machine under the lab's name)
if UP=$($PY -m bench lab up --delay-us 200); then
    ADDR=$(tail -1 <<<"$UP")
    touch "$STAMP"; $PY -m bench run "${ARGS[@]}" --cluster "$ADDR" 2>&1 | tail -2
    record lab delay_us=200
    $PY -m bench lab down
fi
rm -f "$STAMP"
