#!/usr/bin/env bash
# Plays Entra ID's initial provisioning cycle against a fresh scimd, on
# SQLite and on PostgreSQL: per user the `userName eq` lookup then POST;
# then per group the `displayName eq` lookup, POST, and member PATCHes in
# batches of 10 (crates/scimd/examples/entra_cycle.rs), with scimd's
# resident memory sampled throughout.
# A benchmark, not a test: it exits 0 whether or not the targets are met
# (it fails only when something breaks). See docs/BENCHMARKS.md.
#
#   make bench                # runs scripts/bench.sh, bench-groups.sh, then this
#   scripts/bench-entra.sh    # uses target/release/scimd as it is
#
# Environment:
#   SCIMD_BIN            binary to measure (default target/release/scimd)
#   BENCH_BACKENDS       "sqlite postgres" (default) or one of them
#   BENCH_CYCLE_USERS    users (default 100000)
#   BENCH_CYCLE_GROUPS   groups of 100 members (default 1000)
#   BENCH_CYCLE_CONNS    concurrent connections, as Entra's (default 16)
#   BENCH_PG_URL         admin URL of a PostgreSQL server whose role may CREATE
#                        DATABASE (default: scripts/test-postgres.sh's URL)
#   BENCH_OUT            output directory (default target/bench)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BIN="${SCIMD_BIN:-$ROOT/target/release/scimd}"
BACKENDS="${BENCH_BACKENDS:-sqlite postgres}"
USERS="${BENCH_CYCLE_USERS:-100000}"
NGROUPS="${BENCH_CYCLE_GROUPS:-1000}"
CONNS="${BENCH_CYCLE_CONNS:-16}"
OUT="${BENCH_OUT:-$ROOT/target/bench}"

die() { printf 'bench-entra: %s\n' "$*" >&2; exit 2; }
# shellcheck source=scripts/bench-lib.sh
. "$ROOT/scripts/bench-lib.sh"

[ -x "$BIN" ] || die "$BIN not found: run 'make bench' (or 'cargo build --release -p scimd') first"
command -v curl >/dev/null || die "curl is required"
command -v python3 >/dev/null || die "python3 is required"

log "building the load tool (examples/entra_cycle.rs)"
TOOL="$ROOT/target/release/examples/entra_cycle"
if ! cargo build --release --example entra_cycle -p scimd >&2; then
  [ -x "$TOOL" ] || die "cannot build the entra_cycle example"
  log "WARNING: the entra_cycle example did not build; using the existing $TOOL"
fi

mkdir -p "$OUT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/scimd-bench-entra.XXXXXX")"
RESULTS="$OUT/entra.jsonl"
: >"$RESULTS"

cleanup() {
  stop_server
  drop_pg_db
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for backend in $BACKENDS; do
  start_scimd "$backend" entra
  BENCH_TOKEN="$TOKEN" "$TOOL" --base "$BASE" --pid "$SERVER_PID" --backend "$backend" \
    --users "$USERS" --groups "$NGROUPS" --group-size 100 --batch 10 --conns "$CONNS" \
    >>"$RESULTS" || { cp "$SERVER_LOG" "$OUT/" 2>/dev/null; die "the Entra cycle failed on $backend"; }
  report_server_errors "$backend"
  stop_server
  [ "$backend" = postgres ] && drop_pg_db
done

python3 - "$RESULTS" "$OUT/entra.md" <<'PY'
import datetime, json, subprocess, sys

results, out_path = sys.argv[1:3]
rows = [json.loads(l) for l in open(results) if l.strip()]
try:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=True).stdout.strip()
except Exception:
    commit = "unknown"
lines = [
    f"# Entra initial cycle, {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} (commit {commit})",
    "",
    "| backend | users | groups × members | conns | seconds (users + groups) | target | req/s | p99 | errors | peak RSS | met |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
]
for r in rows:
    if r["name"] != "cycle":
        continue
    rss = r.get("rss_peak_mib")
    met = r["seconds"] < r["target_seconds"] and r["errors"] == 0 and (rss is None or rss < 150)
    lines.append(
        f"| {r['backend']} | {r['users']:,} | {r['groups']:,} × {r['group_size']} | {r['conns']} | "
        f"{r['seconds']:.1f} ({r['users_seconds']:.1f} + {r['groups_seconds']:.1f}) | "
        f"< {r['target_seconds']:.0f} s | {r['rps']:,.0f} | {r['p99_ms']:.1f} ms | {r['errors']} | "
        f"{'?' if rss is None else f'{rss:.0f} MiB'} | {'yes' if met else 'NO'} |")
lines += ["", "Where the time goes (each request kind's share of all request time):", "",
          "| backend | request | requests | req/s in its phase | p50 | p99 | share |",
          "|---|---|---:|---:|---:|---:|---:|"]
for r in rows:
    if "share_of_request_time" in r:
        lines.append(f"| {r['backend']} | {r['name']} | {r['requests']:,} | {r['rps']:,.0f} | "
                     f"{r['p50_ms']:.2f} ms | {r['p99_ms']:.2f} ms | "
                     f"{100 * r['share_of_request_time']:.0f}% |")
text = "\n".join(lines) + "\n"
open(out_path, "w").write(text)
print()
print(text)
PY
log "saved $OUT/entra.md (raw results: $OUT/entra.jsonl)"
