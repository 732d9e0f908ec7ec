#!/usr/bin/env bash
# Benchmarks the SCIM API with wrk, on SQLite and on PostgreSQL, with at
# least 100,000 users loaded, against a bare actix-web ceiling.
# A benchmark, not a test: it exits 0 whether or not the targets are met
# (it fails only when something breaks). See docs/BENCHMARKS.md.
#
#   make bench           # builds the release binary, then runs this
#   scripts/bench.sh     # uses target/release/scimd as it is
#
# Environment:
#   SCIMD_BIN          binary to measure (default target/release/scimd)
#   BENCH_BACKENDS     "sqlite postgres" (default) or one of them
#   BENCH_DURATION     seconds per measurement (default 10)
#   BENCH_USERS        users to load before the reads (default 100000)
#   BENCH_PG_URL       admin URL of a PostgreSQL server whose role may CREATE
#                      DATABASE (default: scripts/test-postgres.sh's URL)
#   BENCH_OUT          output directory (default target/bench)
#   BENCH_HOSTILE_PAUSE seconds between the 45,000-email PATCHes sent beside
#                      the last POST run (default 0: back to back)
#   BENCH_SECTIONS     "all" (default), or "hostile": only load the users,
#                      then POST alone and POST beside the 45,000-email
#                      PATCHes (no ceiling, reads or PATCH rows);
#                      "pages": only load the users, then page through them
#                      all by cursor (RFC 9865) and by startIndex; or
#                      "events": event delivery only (scripts/bench-events.sh:
#                      events/s pushed to a local receiver, lag p50/p99); or
#                      "bulk": POST /Bulk only (scripts/bench-bulk.sh: 1,000
#                      users in batches of 100 vs 1,000 single POSTs)
#   BENCH_PAGE_SIZE    users per page in the paging walks (default 100)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BIN="${SCIMD_BIN:-$ROOT/target/release/scimd}"
BACKENDS="${BENCH_BACKENDS:-sqlite postgres}"
DURATION="${BENCH_DURATION:-10}"
USERS="${BENCH_USERS:-100000}"
OUT="${BENCH_OUT:-$ROOT/target/bench}"
READ_CONNS=32
WRITE_CONNS=16
THREADS=2
HOSTILE_PAUSE="${BENCH_HOSTILE_PAUSE:-0}"
SECTIONS="${BENCH_SECTIONS:-all}"
PAGE_SIZE="${BENCH_PAGE_SIZE:-100}"
WARMUP=2

export BENCH_DIR="$ROOT/bench"
export BENCH_BASE_PATH="/scim/v2"

die() { printf 'bench: %s\n' "$*" >&2; exit 2; }
case "$SECTIONS" in
  all|hostile|pages) ;;
  events) exec "$ROOT/scripts/bench-events.sh" ;;
  bulk) exec "$ROOT/scripts/bench-bulk.sh" ;;
  *) die "BENCH_SECTIONS must be all, hostile, pages, events or bulk, not $SECTIONS" ;;
esac
# shellcheck source=scripts/bench-lib.sh
. "$ROOT/scripts/bench-lib.sh"

[ -x "$BIN" ] || die "$BIN not found: run 'make bench' (or 'cargo build --release -p scimd') first"
command -v curl >/dev/null || die "curl is required"
command -v python3 >/dev/null || die "python3 is required"

if ! command -v wrk >/dev/null; then
  log "installing wrk"
  if ! apt-get install -y wrk >/dev/null 2>&1; then
    apt-get update >/dev/null && apt-get install -y wrk >/dev/null \
      || die "cannot install wrk (apt-get install -y wrk)"
  fi
fi

CEILING_BIN="$ROOT/target/release/examples/ceiling"
if [ "$SECTIONS" = all ]; then
  log "building the ceiling (examples/ceiling.rs)"
  if ! cargo build --release --example ceiling -p scimd >&2; then
    # The example links the scimd crate, so a broken work tree elsewhere stops
    # it from building; a ceiling built earlier measures the same thing.
    [ -x "$CEILING_BIN" ] || die "cannot build the ceiling example"
    log "WARNING: the ceiling example did not build; using the existing $CEILING_BIN"
  fi
fi

mkdir -p "$OUT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/scimd-bench.XXXXXX")"
RESULTS="$WORK/results.tsv"
: >"$RESULTS"
PAGING="$WORK/paging.tsv"
: >"$PAGING"

cleanup() {
  stop_ceiling
  stop_server
  drop_pg_db
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Runs wrk and prints its BENCH line (see bench/common.lua).
# Args: lua-script connections seconds url [script args...]
run_wrk() {
  local script="$1" conns="$2" secs="$3" url="$4"
  shift 4
  local out
  out="$(wrk -t"$THREADS" -c"$conns" -d"${secs}s" --latency -s "$BENCH_DIR/$script" "$url" -- "$@")" \
    || { printf '%s\n' "$out" >&2; die "wrk failed ($script)"; }
  printf '%s\n' "$out" >>"$WORK/wrk.log"
  grep '^BENCH ' <<<"$out" | tail -n1
}

field() { # BENCH-line key
  sed -n "s/.* $2=\([0-9.]*\).*/\1/p" <<<"$1"
}

# Measures one endpoint: endpoint-label backend lua-script connections url
measure() {
  local line
  line="$(run_wrk "$3" "$4" "$DURATION" "$5")"
  record "$1" "$2" "$4" "$line"
}

# Records one measurement: endpoint backend connections BENCH-line
record() {
  local line="$4" errors
  errors=$(( $(field "$line" status) + $(field "$line" connect) + $(field "$line" read) \
    + $(field "$line" write) + $(field "$line" timeout) ))
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$(field "$line" rps)" \
    "$(field "$line" p50_us)" "$(field "$line" p99_us)" "$(field "$line" requests)" "$errors" >>"$RESULTS"
  log "$(printf '%-28s %-8s %8s req/s  p50 %6s us  p99 %7s us  errors %s' \
    "$1" "$2" "$(field "$line" rps)" "$(field "$line" p50_us)" "$(field "$line" p99_us)" "$errors")"
  if [ "$errors" -gt 0 ]; then
    log "WARNING: $errors failed requests in '$1' on $2 (non-2xx or socket errors)"
  fi
}

user_count() { # base-url
  curl -fsS -H "Authorization: Bearer $TOKEN" "$1/scim/v2/Users?count=0" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["totalResults"])'
}

# Dumps about 2000 existing users (id and userName), from the start and the
# middle of the collection, for the read and PATCH scripts.
dump_users() { # base-url total
  local base="$1" total="$2" start
  : >"$WORK/users.json"
  for start in 1 $(( total / 2 )); do
    curl -fsS -H "Authorization: Bearer $TOKEN" \
      "$base/scim/v2/Users?startIndex=$start&count=1000&attributes=userName" >>"$WORK/users.json"
    echo >>"$WORK/users.json"
  done
  python3 - "$WORK/users.json" "$WORK/ids.txt" "$WORK/usernames.txt" <<'PY'
import json, sys
ids, names = [], []
for line in open(sys.argv[1]):
    if line.strip():
        for r in json.loads(line)["Resources"]:
            ids.append(r["id"]); names.append(r["userName"])
if len(ids) < 1000:
    sys.exit(f"only {len(ids)} users dumped")
open(sys.argv[2], "w").write("\n".join(ids) + "\n")
open(sys.argv[3], "w").write("\n".join(names) + "\n")
PY
}

# Sends `PATCH /Users/ID` adding 45,000 emails, one after another (with
# BENCH_HOSTILE_PAUSE seconds between them, default none), until killed;
# counts them in $WORK/hostile.count, their statuses in $WORK/hostile.status.
hostile_patches() { # base-url user-id
  python3 - "$WORK/hostile.json" <<'PY'
import json, sys
emails = [{"value": f"hostile{i}@example.com", "type": "other"} for i in range(45000)]
json.dump({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "add", "path": "emails", "value": emails}]}, open(sys.argv[1], "w"))
PY
  local n=0
  : >"$WORK/hostile.status"
  while true; do
    curl -s -o /dev/null -w '%{http_code}\n' -X PATCH -H "Authorization: Bearer $TOKEN" \
      -H 'Content-Type: application/scim+json' --data-binary @"$WORK/hostile.json" \
      "$1/scim/v2/Users/$2" >>"$WORK/hostile.status" || true
    n=$(( n + 1 ))
    echo "$n" >"$WORK/hostile.count"
    sleep "$HOSTILE_PAUSE"
  done
}

# Pages through every user, one request after another on one keep-alive
# connection, by cursor (RFC 9865) and by startIndex, and appends a row per
# method to $PAGING: the whole walk, and the time per page over the first
# and the last ten pages (where startIndex's OFFSET has the most rows to
# skip). The cursor walk also checks that it saw every user exactly once.
measure_paging() { # base-url backend
  python3 - "$1" "$2" "$TOKEN" "$PAGE_SIZE" >>"$PAGING" <<'PY'
import http.client, json, sys, time, urllib.parse

base, backend, token, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
url = urllib.parse.urlsplit(base)
conn = http.client.HTTPConnection(url.hostname, url.port, timeout=600)
headers = {"Authorization": f"Bearer {token}", "Accept": "application/scim+json"}

def get(query):
    start = time.perf_counter()
    conn.request("GET", f"/scim/v2/Users?attributes=id&count={size}&{query}", headers=headers)
    res = conn.getresponse()
    body = res.read()
    elapsed = time.perf_counter() - start
    if res.status != 200:
        sys.exit(f"GET /Users?{query}: {res.status} {body[:300]!r}")
    return json.loads(body), elapsed

def walk(method):
    times, ids = [], []
    doc, t = get("cursor=" if method == "cursor" else "startIndex=1")
    total = doc["totalResults"]
    while True:
        times.append(t)
        ids.extend(r["id"] for r in doc["Resources"])
        if method == "cursor":
            nxt = doc.get("nextCursor")
            if nxt is None:
                break
            doc, t = get("cursor=" + urllib.parse.quote(nxt))
        else:
            if len(ids) >= total or not doc["Resources"]:
                break
            doc, t = get(f"startIndex={len(ids) + 1}")
    if method == "cursor" and (len(set(ids)) != len(ids) or len(ids) != total):
        sys.exit(f"cursor walk saw {len(ids)} ids ({len(set(ids))} distinct) of {total}")
    tail = times[-10:]
    print("\t".join([method, backend, str(len(times)), str(len(ids)), f"{sum(times):.3f}",
                     f"{1000 * sum(times[:10]) / len(times[:10]):.2f}",
                     f"{1000 * sum(tail) / len(tail):.2f}"]))
    sys.stdout.flush()

for method in ("cursor", "index"):
    walk(method)
PY
  log "$(awk -F'\t' -v be="$2" '$2 == be { printf "paging by %s on %s: %s pages in %s s; ms/page first 10 %s, last 10 %s; ", $1, $2, $3, $5, $6, $7 }' "$PAGING")"
}

# --- the ceiling --------------------------------------------------------------
# The same machine's plain actix-web 200, the yardstick of the read targets.
# This machine's speed drifts by tens of percent within minutes (other load
# on the host), so one ceiling taken at the start could be minutes away from
# a backend's reads: each backend's reads are bracketed by a ceiling run
# just before and just after them, and compared with the mean of the two.
CEILING_PID=""
stop_ceiling() {
  if [ -n "$CEILING_PID" ]; then
    kill "$CEILING_PID" 2>/dev/null || true
    wait "$CEILING_PID" 2>/dev/null || true
  fi
  CEILING_PID=""
}
measure_ceiling() { # label backend
  local port token="$BENCH_TOKEN"
  port="$(free_port)"
  "$CEILING_BIN" "127.0.0.1:$port" >"$WORK/ceiling.log" 2>&1 &
  CEILING_PID=$!
  wait_ready "http://127.0.0.1:$port/" || die "the ceiling server did not start"
  export BENCH_TOKEN="scimd_ceiling_does_not_check_it"
  run_wrk ceiling.lua "$READ_CONNS" "$WARMUP" "http://127.0.0.1:$port" >/dev/null
  measure "$1" "$2" ceiling.lua "$READ_CONNS" "http://127.0.0.1:$port"
  export BENCH_TOKEN="$token"
  stop_ceiling
}

# --- scimd on each backend --------------------------------------------------------
bench_backend() { # sqlite|postgres
  local backend="$1" url
  case "$backend" in
    sqlite) url="sqlite://$WORK/bench.db" ;;
    postgres)
      command -v psql >/dev/null || die "psql is required for the PostgreSQL run"
      PG_ADMIN_URL="${BENCH_PG_URL:-$("$ROOT/scripts/test-postgres.sh")}"
      PG_DB="scimd_bench_$$"
      psql "$PG_ADMIN_URL" -qAtc "CREATE DATABASE \"$PG_DB\"" >/dev/null \
        || die "cannot create database $PG_DB on $PG_ADMIN_URL"
      url="${PG_ADMIN_URL%/*}/$PG_DB"
      ;;
    *) die "unknown backend $backend" ;;
  esac

  PORT="$(free_port)"
  export SCIMD__DATABASE__URL="$url"
  export SCIMD__SERVER__BIND="127.0.0.1:$PORT"
  export SCIMD__LOG__LEVEL=warn
  # The 45,000-email PATCH below is about 2.5 MB: let it in, so the value
  # cap (not the body limit) is what refuses it.
  export SCIMD__SERVER__MAX_BODY_BYTES=4194304
  # Every load connection comes from 127.0.0.1: no per-address cap.
  export SCIMD__SERVER__MAX_CONNECTIONS_PER_ADDRESS=0
  local base="http://127.0.0.1:$PORT"

  "$BIN" migrate >"$WORK/migrate-$backend.log" 2>&1 \
    || { cat "$WORK/migrate-$backend.log" >&2; die "scimd migrate failed on $backend"; }
  "$ROOT/scripts/enable-sync.sh" "$BIN" >"$WORK/sync-$backend.log" 2>&1 \
    || { cat "$WORK/sync-$backend.log" >&2; die "enabling User Synchronization failed on $backend"; }
  TOKEN="$("$BIN" token create --name bench 2>/dev/null | grep -E '^scimd_' | head -n1 || true)"
  [ -n "$TOKEN" ] || die "scimd token create printed no secret"
  export BENCH_TOKEN="$TOKEN"

  "$BIN" serve >"$WORK/server-$backend.log" 2>&1 &
  SERVER_PID=$!
  wait_ready "$base/readyz" || { cat "$WORK/server-$backend.log" >&2; die "scimd did not start on $backend"; }
  log "scimd on $backend ($base)"

  # POST, measured from an empty table; this also loads the users.
  local line count rps secs
  line="$(run_wrk post_users.lua "$WRITE_CONNS" "$DURATION" "$base" run)"
  record "POST /Users" "$backend" "$WRITE_CONNS" "$line"
  count="$(user_count "$base")"
  rps="$(field "$line" rps)"
  local round=0
  while [ "$count" -lt "$USERS" ]; do
    round=$(( round + 1 ))
    [ "$round" -le 5 ] || die "could not load $USERS users on $backend (have $count)"
    secs=$(python3 -c "import math; print(max(2, math.ceil(($USERS - $count) / max(float('$rps') * 0.9, 200.0)) + 1))")
    log "loading users: $count so far, topping up for ${secs}s"
    run_wrk post_users.lua "$WRITE_CONNS" "$secs" "$base" "top$round" >/dev/null
    count="$(user_count "$base")"
  done
  log "$count users loaded on $backend"
  echo "$count" >"$WORK/users-$backend.count"

  dump_users "$base" "$count"
  export BENCH_IDS="$WORK/ids.txt" BENCH_USERNAMES="$WORK/usernames.txt"

  # The load just inserted 100k users in well under a minute, so PostgreSQL's
  # autovacuum owes those tables a VACUUM ANALYZE, and would start it in the
  # middle of a measurement (seen under PATCH). A database that has been in
  # service has had it: run it now, so the figures are the steady state.
  if [ "$backend" = postgres ]; then
    log "VACUUM (ANALYZE) after the load"
    psql "$url" -qAtc "VACUUM (ANALYZE)" >/dev/null || die "VACUUM failed on $url"
  fi

  if [ "$SECTIONS" = pages ]; then
    measure_paging "$base" "$backend"
    stop_server
    [ "$backend" = postgres ] && drop_pg_db
    return 0
  fi

  if [ "$SECTIONS" = all ]; then
    measure_ceiling "ceiling (actix-web 200), before the reads" "$backend"
    run_wrk get_filter.lua "$READ_CONNS" "$WARMUP" "$base" >/dev/null
    measure 'GET /Users?filter=userName eq' "$backend" get_filter.lua "$READ_CONNS" "$base"
    run_wrk get_id.lua "$READ_CONNS" "$WARMUP" "$base" >/dev/null
    measure "GET /Users/{id}" "$backend" get_id.lua "$READ_CONNS" "$base"
    measure_ceiling "ceiling (actix-web 200), after the reads" "$backend"
    measure "PATCH /Users/{id}" "$backend" patch_user.lua "$WRITE_CONNS" "$base"
    measure_paging "$base" "$backend"
  else
    # The row the one below compares with, on the same table just before.
    measure "POST /Users, alone" "$backend" post_users.lua "$WRITE_CONNS" "$base"
  fi

  # POST again while one more client sends a PATCH adding 45,000 emails to
  # one user, back to back (each refused by the value cap, docs/SCIM.md):
  # its p99 beside the plain POST row shows what such a client costs the
  # others. Before the cap one such PATCH held SQLite's writer for 25 s.
  hostile_patches "$base" "$(head -n1 "$WORK/ids.txt")" &
  local hostile=$!
  measure "POST /Users, 45k-email PATCHes alongside" "$backend" post_users.lua "$WRITE_CONNS" "$base"
  kill "$hostile" 2>/dev/null || true
  wait "$hostile" 2>/dev/null || true
  log "45,000-email PATCHes sent alongside: $(cat "$WORK/hostile.count" 2>/dev/null || echo '?') ($(sort -u "$WORK/hostile.status" 2>/dev/null | tr '\n' ' ')answers)"

  if grep -qiE 'error|panick' "$WORK/server-$backend.log"; then
    log "server log on $backend has errors:"; grep -iE 'error|panick' "$WORK/server-$backend.log" | tail -n 20 >&2
  fi
  stop_server
  [ "$backend" = postgres ] && drop_pg_db
  return 0
}

for backend in $BACKENDS; do
  bench_backend "$backend"
done

# --- the table ---------------------------------------------------------------------
python3 - "$RESULTS" "$OUT/results.md" "$DURATION" "$THREADS" "$WORK" "$BACKENDS" "$PAGING" <<'PY'
import datetime, os, subprocess, sys

results, out_path, duration, threads, work, backends, paging = sys.argv[1:8]
rows = [line.rstrip("\n").split("\t") for line in open(results) if line.strip()]
# Each backend's ceiling: the mean of the runs bracketing its reads.
ceiling_runs = {}
for r in rows:
    if r[0].startswith("ceiling"):
        ceiling_runs.setdefault(r[1], []).append(float(r[3]))
ceilings = {be: sum(v) / len(v) for be, v in ceiling_runs.items()}

def ms(us):
    return f"{int(us) / 1000:.2f} ms"

def users(backend):
    p = os.path.join(work, f"users-{backend}.count")
    return open(p).read().strip() if os.path.exists(p) else "?"

try:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=True).stdout.strip()
except Exception:
    commit = "unknown"

lines = [
    f"# scimd benchmark, {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} (commit {commit})",
    "",
    f"wrk {threads} threads, {duration} s per measurement, --latency; reads with 32 connections, "
    f"writes with 16; {os.cpu_count()} CPU cores shared by wrk and the server. "
    + ", ".join(f"{b}: {users(b)} users" for b in backends.split()) + ".",
    "",
    "| endpoint | backend | conns | req/s | p50 | p99 | % of ceiling | failed requests |",
    "|---|---|---:|---:|---:|---:|---:|---:|",
]
by_key = {}
for ep, be, conns, rps, p50, p99, n, errors in rows:
    rps = float(rps)
    by_key[(ep, be)] = rps
    share = f"{100 * rps / ceilings[be]:.1f}%" if be in ceilings else "-"
    lines.append(f"| {ep} | {be} | {conns} | {rps:,.0f} | {ms(p50)} | {ms(p99)} | "
                 f"{share} | {errors} |")

targets = []
for be, factor in (("sqlite", 1.0), ("postgres", 0.5)):
    if be not in backends.split() or be not in ceilings:
        continue
    for ep in ("GET /Users?filter=userName eq", "GET /Users/{id}"):
        want = 0.20 * factor * ceilings.get(be, float("inf"))
        got = by_key.get((ep, be), 0.0)
        targets.append((f"{ep} on {be} >= {20 * factor:g}% of ceiling ({want:,.0f}/s)", got, got >= want))
    for ep in ("PATCH /Users/{id}", "POST /Users"):
        want = 5000 * factor
        got = by_key.get((ep, be), 0.0)
        targets.append((f"{ep} on {be} >= {want:,.0f}/s", got, got >= want))

if targets:
    lines += ["", "| target | measured | met |", "|---|---:|---|"]
    lines += [f"| {t} | {got:,.0f}/s | {'yes' if ok else 'NO'} |" for t, got, ok in targets]

walks = [line.rstrip("\n").split("\t") for line in open(paging) if line.strip()]
if walks:
    lines += ["", "Paging through every user, one request at a time (`attributes=id`): "
              "by cursor (RFC 9865, keyset in SQL) and by startIndex (OFFSET).", "",
              "| paging | backend | pages | users | whole walk | ms/page, first 10 | ms/page, last 10 |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for method, be, pages, seen, secs, first, last in walks:
        lines.append(f"| {method} | {be} | {pages} | {seen} | {float(secs):.1f} s | {first} | {last} |")
text = "\n".join(lines) + "\n"
open(out_path, "w").write(text)
print()
print(text)
PY
cp "$WORK/wrk.log" "$OUT/wrk.log"
for f in "$WORK"/server-*.log; do [ -e "$f" ] && cp "$f" "$OUT/"; done
log "saved $OUT/results.md (raw wrk output: $OUT/wrk.log)"
