#!/usr/bin/env bash
# One point measured three ways, side by side in one sitting: on one machine, on a Dask
# cluster on this machine (`bench cluster local`), and across the two-host lab (`bench lab
# up`, root) at two rate limits; then the lab with 200 us of added round trip, which needs
# the kernel's netem (refused with the reason where it is missing).
#   sudo benchmarks/three_placements.sh [RESULTS_DIR]
set -u
cd "$(dirname "$0")/.."
PY=.venv/bin/python
OUT=${1:-results/three-placements}
ARGS=(--profile quick --models epoll,threaded --scenarios persistent --connections 100
      --repetitions 5 --duration 1.0 --warmup 0.2 --server-warmup 0.2 --no-progress
      --no-report --results "$OUT")
echo "== one machine"; $PY -m bench run "${ARGS[@]}" 2>&1 | tail -2
echo "== local cluster"
ADDR_FILE=$(mktemp)
$PY -m bench cluster local > "$ADDR_FILE" 2>/dev/null & CLUSTER=$!
for _ in $(seq 120); do [ -s "$ADDR_FILE" ] && break; sleep 0.5; done
$PY -m bench run "${ARGS[@]}" --cluster "$(tail -1 "$ADDR_FILE")" 2>&1 | tail -2
kill -TERM "$CLUSTER"; wait "$CLUSTER"; rm -f "$ADDR_FILE"
for RATE in 1000 200; do
    echo "== lab, $RATE Mbit/s"
    ADDR=$($PY -m bench lab up --rate-mbit "$RATE" | tail -1)
    $PY -m bench run "${ARGS[@]}" --cluster "$ADDR" 2>&1 | tail -2
    $PY -m bench lab down
done
echo "== lab, 200 us added round trip"
if ADDR=$($PY -m bench lab up --delay-us 200 | tail -1); then
    $PY -m bench run "${ARGS[@]}" --cluster "$ADDR" 2>&1 | tail -2
    $PY -m bench lab down
fi
