#!/usr/bin/env bash
# The demo: a simulated fleet on 127.0.0.1 imported into a fresh SQLite store, then
# `headend serve` collecting every meter's history at once while it serves the API and the
# dashboard. Run through `make demo`; Ctrl-C stops everything.
set -euo pipefail
BIN=${BIN:-.venv/bin}
DIR=${DEMO_DIR:-demo}
PORT=${DEMO_BASE_PORT:-24000}
API_PORT=${DEMO_API_PORT:-8000}
METERS=${DEMO_METERS:-200}
mkdir -p "$DIR"
rm -f "$DIR/headend.db" "$DIR/headend.db-wal" "$DIR/headend.db-shm"
export HEADEND_DEMO=1
export HEADEND_DATABASE_URL="sqlite:///$DIR/headend.db"
export HEADEND_SPOOL_DIR="$DIR/spool"
export HEADEND_RETRY_DELAY_SCALE=${HEADEND_RETRY_DELAY_SCALE:-0.02}
export HEADEND_RESPONSE_TIMEOUT_S=${HEADEND_RESPONSE_TIMEOUT_S:-4}
export HEADEND_CONNECT_TIMEOUT_S=${HEADEND_CONNECT_TIMEOUT_S:-4}
export HEADEND_LOG_LEVEL=${HEADEND_LOG_LEVEL:-WARNING}
# two weeks of history a meter: a fleet of a few hundred is read and validated within two minutes
export HEADEND_BACKFILL_DAYS=${HEADEND_BACKFILL_DAYS:-14}

echo "== the store"
"$BIN/headend" db upgrade

echo "== a simulated fleet: TCP wrapper meters, RS485 buses behind HDLC-over-TCP gateways, pty serial lines"
"$BIN/headend" simulate --meters "$METERS" --transport mixed --auth mixed --seed 7 \
  --faults no_answer=2,slow=1:delay_s=10,drop=1,bad_fcs=1,reject=1,wrong_ic=1,clock_drift=3,outage=4,spike=2,backwards=1,exchange=1 \
  --base-port "$PORT" --pty-dir "$DIR/pty" \
  --fleet-out "$DIR/fleet.json" --registry-out "$DIR/registry.csv" --no-serve
"$BIN/headend" meters import "$DIR/registry.csv"
"$BIN/headend" meters summary
"$BIN/headend" plans set daily --cron '5 0 * * *' --read registers --read load_profile --meters all

"$BIN/headend" simulate --fleet "$DIR/fleet.json" --pty-dir "$DIR/pty" > "$DIR/simulator.log" 2>&1 &
SIM=$!
trap 'kill $SIM 2>/dev/null || true; wait $SIM 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do grep -q serving "$DIR/simulator.log" 2>/dev/null && break; sleep 0.2; done
cat "$DIR/simulator.log"

KEY=$("$BIN/headend" keys create --name "demo-$(date +%s)" --role admin 2>/dev/null)
echo "$KEY" > "$DIR/demo-key.txt"
cat <<INFO

== headend is collecting every meter's history and serving the dashboard and the API
   dashboard:  http://127.0.0.1:$API_PORT/          (log in with the key below)
   API:        http://127.0.0.1:$API_PORT/docs
   key:        $KEY        (also in $DIR/demo-key.txt; role admin)
   Billing-ready data appears as meters are read and validated; the faulty meters show
   in the failed-read report. Ctrl-C stops everything.

INFO
"$BIN/headend" serve --host 127.0.0.1 --port "$API_PORT" --collect-now
