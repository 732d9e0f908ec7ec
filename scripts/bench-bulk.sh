#!/usr/bin/env bash
# Benchmarks POST /Bulk (RFC 7644 §3.7; docs/SCIM.md, "Bulk") on SQLite and
# PostgreSQL: 1,000 users created through /Bulk in batches of 100, against
# 1,000 single POST /Users, one request after another on one keep-alive
# connection (a migration script's way), and the single POSTs again from
# 10 connections at once (an identity provider's way). Rounds alternate
# between the three, each on new userNames; the median round is reported.
# A benchmark, not a test: it exits 0 whether or not a figure is good.
#
#   scripts/bench-bulk.sh      # or BENCH_SECTIONS=bulk scripts/bench.sh
#
# Environment:
#   SCIMD_BIN            binary to measure (default target/release/scimd)
#   BENCH_BACKENDS       "sqlite postgres" (default) or one of them
#   BENCH_BULK_USERS     users per measurement (default 1000)
#   BENCH_BULK_BATCH     operations per /Bulk request (default 100)
#   BENCH_BULK_ROUNDS    rounds of the three measurements (default 3)
#   BENCH_PG_URL         admin URL of a PostgreSQL server whose role may CREATE DATABASE
#   BENCH_OUT            output directory (default target/bench)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BIN="${SCIMD_BIN:-$ROOT/target/release/scimd}"
BACKENDS="${BENCH_BACKENDS:-sqlite postgres}"
USERS="${BENCH_BULK_USERS:-1000}"
BATCH="${BENCH_BULK_BATCH:-100}"
ROUNDS="${BENCH_BULK_ROUNDS:-3}"
OUT="${BENCH_OUT:-$ROOT/target/bench}"

die() { printf 'bench-bulk: %s\n' "$*" >&2; exit 2; }
# shellcheck source=scripts/bench-lib.sh
. "$ROOT/scripts/bench-lib.sh"

[ -x "$BIN" ] || die "$BIN not found: run 'make bench' (or 'cargo build --release -p scimd') first"
command -v python3 >/dev/null || die "python3 is required"

mkdir -p "$OUT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/scimd-bench-bulk.XXXXXX")"
RESULTS="$WORK/bulk.tsv"
: >"$RESULTS"
cleanup() {
  stop_server
  drop_pg_db
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for backend in $BACKENDS; do
  start_scimd "$backend" bulk
  python3 - "$BASE" "$TOKEN" "$backend" "$USERS" "$BATCH" "$ROUNDS" >>"$RESULTS" <<'PY'
import http.client, json, statistics, sys, threading, time, urllib.parse

base, token, backend = sys.argv[1], sys.argv[2], sys.argv[3]
users, batch, rounds = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
url = urllib.parse.urlsplit(base)
headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}

def connect():
    return http.client.HTTPConnection(url.hostname, url.port, timeout=600)

def user(name):
    return {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": name, "externalId": name, "active": True,
            "displayName": name, "name": {"givenName": "Bulk", "familyName": name},
            "emails": [{"value": name, "type": "work", "primary": True}]}

def post(conn, path, body):
    conn.request("POST", path, body=json.dumps(body), headers=headers)
    res = conn.getresponse()
    return res.status, res.read()

def singles(prefix, conns):
    names = [f"{prefix}-{i}@bench.example" for i in range(users)]
    failed = []
    def worker(part):
        conn = connect()
        for name in part:
            status, body = post(conn, "/scim/v2/Users", user(name))
            if status != 201:
                failed.append((status, body[:200]))
    parts = [names[i::conns] for i in range(conns)]
    threads = [threading.Thread(target=worker, args=(p,)) for p in parts]
    start = time.perf_counter()
    for t in threads: t.start()
    for t in threads: t.join()
    elapsed = time.perf_counter() - start
    if failed:
        sys.exit(f"{len(failed)} single POSTs failed, e.g. {failed[0]}")
    return elapsed

def bulk(prefix):
    conn = connect()
    start = time.perf_counter()
    for first in range(0, users, batch):
        ops = [{"method": "POST", "path": "/Users", "bulkId": f"u{i}",
                "data": user(f"{prefix}-{i}@bench.example")}
               for i in range(first, min(first + batch, users))]
        status, body = post(conn, "/scim/v2/Bulk",
                            {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                             "Operations": ops})
        if status != 200:
            sys.exit(f"/Bulk answered {status}: {body[:300]!r}")
        bad = [r for r in json.loads(body)["Operations"] if r["status"] != "201"]
        if bad:
            sys.exit(f"{len(bad)} bulk operations failed, e.g. {bad[0]}")
    return time.perf_counter() - start

kinds = {
    f"/Bulk, {batch} per request, 1 connection": lambda p: bulk(p),
    "single POST /Users, 1 connection": lambda p: singles(p, 1),
    "single POST /Users, 10 connections": lambda p: singles(p, 10),
}
# A warm-up round of each, not counted.
for n, run in enumerate(kinds.values()):
    run(f"warm{n}")
times = {k: [] for k in kinds}
for r in range(rounds):
    for n, (kind, run) in enumerate(kinds.items()):
        times[kind].append(run(f"r{r}k{n}"))
for kind, ts in times.items():
    secs = statistics.median(ts)
    print("\t".join([kind, backend, str(users), f"{secs:.3f}", f"{users / secs:.0f}",
                     " ".join(f"{t:.2f}" for t in ts)]))
PY
  report_server_errors "$backend"
  stop_server
  [ "$backend" = postgres ] && drop_pg_db
done

python3 - "$RESULTS" "$OUT/bulk.md" <<'PY'
import datetime, subprocess, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
try:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=True).stdout.strip()
except Exception:
    commit = "unknown"
lines = [f"# scimd /Bulk benchmark, {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} (commit {commit})",
         "", "| how | backend | users | median time | users/s | rounds (s) |",
         "|---|---|---:|---:|---:|---|"]
for kind, be, n, secs, rate, rounds in rows:
    lines.append(f"| {kind} | {be} | {n} | {float(secs):.2f} s | {rate} | {rounds} |")
text = "\n".join(lines) + "\n"
open(sys.argv[2], "w").write(text)
print()
print(text)
PY
log "saved $OUT/bulk.md"
