#!/usr/bin/env bash
# The demo: a simulated fleet on 127.0.0.1, imported into a fresh SQLite store, then one
# collection with backfill of the meters' history. Run through `make demo`.
set -euo pipefail
BIN=${BIN:-.venv/bin}
DIR=${DEMO_DIR:-demo}
PORT=${DEMO_BASE_PORT:-24000}
mkdir -p "$DIR"
rm -f "$DIR/headend.db" "$DIR/headend.db-wal" "$DIR/headend.db-shm"
export HEADEND_DEMO=1
export HEADEND_DATABASE_URL="sqlite:///$DIR/headend.db"
export HEADEND_RETRY_DELAY_SCALE=${HEADEND_RETRY_DELAY_SCALE:-0.02}
export HEADEND_RESPONSE_TIMEOUT_S=${HEADEND_RESPONSE_TIMEOUT_S:-4}
export HEADEND_CONNECT_TIMEOUT_S=${HEADEND_CONNECT_TIMEOUT_S:-4}

echo "== the store"
"$BIN/headend" db upgrade

echo "== a simulated fleet: TCP wrapper meters, RS485 buses behind HDLC-over-TCP gateways, pty serial lines"
"$BIN/headend" simulate --meters 120 --transport mixed --auth mixed --seed 7 \
  --faults no_answer=1,slow=1:delay_s=10,drop=1,bad_fcs=1,reject=1,wrong_ic=1,clock_drift=3,outage=3,spike=2,backwards=1,exchange=1 \
  --base-port "$PORT" --pty-dir "$DIR/pty" \
  --fleet-out "$DIR/fleet.json" --registry-out "$DIR/registry.csv" --no-serve
"$BIN/headend" meters import "$DIR/registry.csv"
"$BIN/headend" meters summary

"$BIN/headend" simulate --fleet "$DIR/fleet.json" --pty-dir "$DIR/pty" > "$DIR/simulator.log" 2>&1 &
SIM=$!
trap 'kill $SIM 2>/dev/null; wait $SIM 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 1 50); do grep -q serving "$DIR/simulator.log" 2>/dev/null && break; sleep 0.2; done
cat "$DIR/simulator.log"

echo "== one collection: registers and load profile, with the meters' history"
"$BIN/headend" collect
echo "== failed reads"
"$BIN/headend" jobs list --state failed
