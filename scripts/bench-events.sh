#!/usr/bin/env bash
# Benchmarks SCIM event delivery (docs/EVENTS.md): a running `scimd serve`
# pushes SETs to a receiver on 127.0.0.1, on SQLite and on PostgreSQL. The
# receiver and the writes come from crates/scimd/examples/events_bench.rs:
# a burst of changes (delivery throughput, events/s) then paced single
# changes (end-to-end lag, p50/p99), twice: PATCHes through scimd's own
# SCIM API, which wake the deliverer at once (what an application waits
# for an identity provider's change), and changes committed by another
# process, which scimd sees at its next look
# (SCIMD__EVENTS__POLL_INTERVAL_MILLIS, set below), as another replica's.
# Then the identity provider's PATCHes (wrk) without a push stream and with
# one delivering them, and whether delivery kept up.
# A benchmark, not a test: it exits 0 whether or not a figure is good.
#
#   make bench                 # runs scripts/bench.sh, then this
#   scripts/bench-events.sh    # or BENCH_SECTIONS=events scripts/bench.sh
#
# Environment:
#   SCIMD_BIN            binary to measure (default target/release/scimd)
#   EVENTS_BENCH_BIN     the load program (default target/release/examples/events_bench,
#                        built if missing)
#   BENCH_BACKENDS       "sqlite postgres" (default) or one of them
#   BENCH_EVENTS         changes in the burst (default 5000)
#   BENCH_PACED          paced changes for the lag (default 200)
#   BENCH_RATE           paced changes per second (default 20)
#   BENCH_POLL_MILLIS    the deliverer's look interval (default 100)
#   BENCH_WRITE_SECS     seconds of PATCHes without, then with, a stream (default 5)
#   BENCH_PG_URL         admin URL of a PostgreSQL server whose role may CREATE DATABASE
#   BENCH_OUT            output directory (default target/bench)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BIN="${SCIMD_BIN:-$ROOT/target/release/scimd}"
LOAD="${EVENTS_BENCH_BIN:-$ROOT/target/release/examples/events_bench}"
BACKENDS="${BENCH_BACKENDS:-sqlite postgres}"
EVENTS="${BENCH_EVENTS:-5000}"
PACED="${BENCH_PACED:-200}"
RATE="${BENCH_RATE:-20}"
POLL_MILLIS="${BENCH_POLL_MILLIS:-100}"
WRITE_SECS="${BENCH_WRITE_SECS:-5}"
OUT="${BENCH_OUT:-$ROOT/target/bench}"

die() { printf 'bench-events: %s\n' "$*" >&2; exit 2; }
# shellcheck source=scripts/bench-lib.sh
. "$ROOT/scripts/bench-lib.sh"

[ -x "$BIN" ] || die "$BIN not found: run 'make bench' (or 'cargo build --release -p scimd') first"
command -v wrk >/dev/null || die "wrk is required (apt-get install -y wrk; scripts/bench.sh installs it)"
if [ ! -x "$LOAD" ]; then
  log "building the load program (examples/events_bench.rs)"
  cargo build --release --example events_bench -p scimd >&2 || die "cannot build examples/events_bench.rs"
fi

mkdir -p "$OUT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/scimd-bench-events.XXXXXX")"
cleanup() {
  stop_server
  drop_pg_db
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export SCIMD__EVENTS__ALLOW_PRIVATE_RECEIVERS=true
export SCIMD__EVENTS__POLL_INTERVAL_MILLIS="$POLL_MILLIS"
ROWS="" WRITES=""
for backend in $BACKENDS; do
  start_scimd "$backend" events
  line="$("$LOAD" --db "$SCIMD__DATABASE__URL" --events "$EVENTS" --paced "$PACED" --rate "$RATE" \
    --scim "$BASE" --token "$TOKEN" | grep '^BENCH events')" \
    || { cat "$SERVER_LOG" >&2; die "the load program failed on $backend"; }
  log "$backend: $line"
  get() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$line"; }
  ROWS="$ROWS| $backend | $(get burst) | $(get throughput) | $(get paced) at $(get rate)/s | $(get api_lag_p50_ms) ms | $(get api_lag_p99_ms) ms | $(get lag_p50_ms) ms | $(get lag_p99_ms) ms |"$'\n'
  report_server_errors "$backend"
  stop_server
  [ "$backend" = postgres ] && drop_pg_db

  # The identity provider's writes with a stream delivering them: PATCHes
  # (wrk, 16 connections) without a stream, then with one (the load
  # program's --hold), and how many of the changes written the receiver
  # got by WRITE_SECS + 4 s after the PATCHes started.
  start_scimd "$backend" writes
  export BENCH_DIR="$ROOT/bench" BENCH_TOKEN="$TOKEN" BENCH_BASE_PATH=/scim/v2
  wrk -t2 -c16 -d3s -s "$BENCH_DIR/post_users.lua" "$BASE" -- events >/dev/null \
    || die "cannot load users on $backend"
  python3 - "$BASE" "$TOKEN" "$WORK/ids.txt" <<'PY' || die "cannot dump the users on $backend"
import json, sys, urllib.request
base, token, out = sys.argv[1:4]
req = urllib.request.Request(base + "/scim/v2/Users?startIndex=1&count=500&attributes=userName",
                             headers={"Authorization": "Bearer " + token})
ids = [r["id"] for r in json.load(urllib.request.urlopen(req))["Resources"]]
open(out, "w").write("\n".join(ids) + "\n")
PY
  export BENCH_IDS="$WORK/ids.txt"
  # As scripts/bench-ab.sh: PostgreSQL right after a bulk load runs up to
  # 3 times slower until it is vacuumed.
  if [ "$backend" = postgres ]; then
    psql "$SCIMD__DATABASE__URL" -qc 'VACUUM (ANALYZE)' || die "VACUUM failed"
  fi
  rate() { wrk -t2 -c16 -d"$1s" -s "$BENCH_DIR/patch_user.lua" "$BASE" \
    | sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p'; }
  rate 1 >/dev/null # warm-up
  without="$(rate "$WRITE_SECS")"
  "$LOAD" --db "$SCIMD__DATABASE__URL" --hold $((WRITE_SECS + 5)) >"$WORK/hold.txt" &
  hold=$!
  # The stream is created, and the deliverer sees it at its next look.
  sleep 1
  with="$(rate "$WRITE_SECS")"
  wait "$hold" || die "the receiver failed on $backend"
  held="$(grep '^BENCH hold' "$WORK/hold.txt")"
  log "$backend: PATCH $without/s without a stream, $with/s with one; $held"
  got() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$held"; }
  WRITES="$WRITES| $backend | $(printf '%.0f' "$without") | $(printf '%.0f' "$with") | $(got received) of $(got written) |"$'\n'
  report_server_errors "$backend"
  stop_server
  [ "$backend" = postgres ] && drop_pg_db
done

{
  printf '# scimd event delivery, %s (commit %s)\n\n' "$(date '+%Y-%m-%d %H:%M')" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  printf 'One push stream (ES256, full events) to a receiver on 127.0.0.1; deliverer look interval %s ms; %s CPU cores shared by everything.\n\n' "$POLL_MILLIS" "$(nproc)"
  printf 'Lag: from sending a PATCH through scimd'"'"'s SCIM API to its SET'"'"'s arrival (the write wakes the deliverer), and from another process'"'"'s commit (another replica'"'"'s, seen at the next look) to the arrival.\n\n'
  printf '| backend | burst | events/s pushed | paced | SCIM write lag p50 | p99 | other process lag p50 | p99 |\n|---|---:|---:|---|---:|---:|---:|---:|\n%s' "$ROWS"
  printf '\nPATCH /Users/{id} (wrk, 16 connections, %s s) without a push stream and with one; SETs the receiver got by %s s after the PATCHes with the stream started, of the changes written:\n\n' "$WRITE_SECS" "$((WRITE_SECS + 4))"
  printf '| backend | PATCH req/s, no stream | with the stream | SETs received |\n|---|---:|---:|---:|\n%s' "$WRITES"
} | tee "$OUT/events.md"
log "saved $OUT/events.md"
