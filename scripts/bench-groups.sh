#!/usr/bin/env bash
# Benchmarks the SCIM Groups API (membership PATCH on a 10-member and a
# 100,000-member group, Entra-style provisioning of 1,000 groups × 100
# members, GET of the 100,000-member group and scimd's memory), on SQLite
# and on PostgreSQL. The load comes from crates/scimd/examples/groups_bench.rs.
# A benchmark, not a test: it exits 0 whether or not the targets are met
# (it fails only when something breaks). See docs/BENCHMARKS-GROUPS.md.
#
#   make bench                # runs scripts/bench.sh, then this
#   scripts/bench-groups.sh   # uses target/release/scimd as it is
#
# Environment:
#   SCIMD_BIN          binary to measure (default target/release/scimd)
#   BENCH_BACKENDS     "sqlite postgres" (default) or one of them
#   BENCH_GROUP_USERS  members of the big group (default 100000)
#   BENCH_PAIRS        add+remove pairs per group, BENCH_CONNS connections (default 3000)
#   BENCH_SERIAL_PAIRS add+remove pairs per group, 1 connection (default 500)
#   BENCH_CONNS        connections for the PATCH runs and provisioning (default 8)
#   BENCH_PROV_GROUPS  groups provisioned with 100 members each (default 1000)
#   BENCH_PG_URL       admin URL of a PostgreSQL server whose role may CREATE
#                      DATABASE (default: scripts/test-postgres.sh's URL)
#   BENCH_OUT          output directory (default target/bench)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BIN="${SCIMD_BIN:-$ROOT/target/release/scimd}"
BACKENDS="${BENCH_BACKENDS:-sqlite postgres}"
USERS="${BENCH_GROUP_USERS:-100000}"
PAIRS="${BENCH_PAIRS:-3000}"
SERIAL_PAIRS="${BENCH_SERIAL_PAIRS:-500}"
CONNS="${BENCH_CONNS:-8}"
USER_CONNS=16
NGROUPS="${BENCH_PROV_GROUPS:-1000}"
GROUP_SIZE=100
BATCH=10
OUT="${BENCH_OUT:-$ROOT/target/bench}"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench-groups: %s\n' "$*" >&2; exit 2; }

[ -x "$BIN" ] || die "$BIN not found: run 'make bench' (or 'cargo build --release -p scimd') first"
command -v curl >/dev/null || die "curl is required"
command -v python3 >/dev/null || die "python3 is required"

log "building the load tool (examples/groups_bench.rs)"
TOOL="$ROOT/target/release/examples/groups_bench"
if ! cargo build --release --example groups_bench -p scimd >&2; then
  # The example links the scimd crate, so a broken work tree elsewhere stops
  # it from building; a tool built earlier sends the same requests.
  [ -x "$TOOL" ] || die "cannot build the groups_bench example"
  log "WARNING: the groups_bench example did not build; using the existing $TOOL"
fi

mkdir -p "$OUT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/scimd-bench-groups.XXXXXX")"
RESULTS="$OUT/groups.jsonl"
: >"$RESULTS"
SERVER_PID=""
PG_ADMIN_URL=""
PG_DB=""

stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
drop_pg_db() {
  if [ -n "$PG_DB" ]; then
    # Retried: a drop right after the server stops has once failed here.
    local i err=""
    for i in 1 2 3 4 5; do
      if err="$(psql "$PG_ADMIN_URL" -qAtc "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" 2>&1)"; then
        err=""; break
      fi
      sleep 1
    done
    [ -z "$err" ] || log "could not drop database $PG_DB: $err"
    PG_DB=""
  fi
}
cleanup() {
  stop_server
  drop_pg_db
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_ready() { # URL
  for _ in $(seq 1 100); do
    if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

bench_backend() { # sqlite|postgres
  local backend="$1" url
  case "$backend" in
    sqlite) url="sqlite://$WORK/bench-groups.db" ;;
    postgres)
      command -v psql >/dev/null || die "psql is required for the PostgreSQL run"
      PG_ADMIN_URL="${BENCH_PG_URL:-$("$ROOT/scripts/test-postgres.sh")}"
      PG_DB="scimd_bench_groups_$$"
      psql "$PG_ADMIN_URL" -qAtc "CREATE DATABASE \"$PG_DB\"" >/dev/null \
        || die "cannot create database $PG_DB on $PG_ADMIN_URL"
      url="${PG_ADMIN_URL%/*}/$PG_DB"
      ;;
    *) die "unknown backend $backend" ;;
  esac

  local port
  port="$(free_port)"
  export SCIMD__DATABASE__URL="$url"
  export SCIMD__SERVER__BIND="127.0.0.1:$port"
  export SCIMD__LOG__LEVEL=warn
  # Every load connection comes from 127.0.0.1: no per-address cap.
  export SCIMD__SERVER__MAX_CONNECTIONS_PER_ADDRESS=0
  local base="http://127.0.0.1:$port"

  "$BIN" migrate >"$WORK/migrate-$backend.log" 2>&1 \
    || { cat "$WORK/migrate-$backend.log" >&2; die "scimd migrate failed on $backend"; }
  local token
  token="$("$BIN" token create --name bench 2>/dev/null | grep -E '^scimd_' | head -n1 || true)"
  [ -n "$token" ] || die "scimd token create printed no secret"
  # Binaries with User Synchronization answer 403 until it is enabled,
  # which needs SAML configured: scripts/enable-sync.sh sets up a
  # throwaway one (older binaries have no `sync` command).
  # Retried: `scimd saml set` has crashed (SIGSEGV) about once in ten
  # runs on PostgreSQL here; it is idempotent.
  if "$BIN" sync --help >/dev/null 2>&1; then
    local try
    for try in 1 2 3; do
      if "$ROOT/scripts/enable-sync.sh" "$BIN" >"$WORK/sync-$backend.log" 2>&1; then break; fi
      [ "$try" -lt 3 ] || { cat "$WORK/sync-$backend.log" >&2; die "cannot enable User Synchronization on $backend (scripts/enable-sync.sh)"; }
      log "WARNING: scripts/enable-sync.sh failed on $backend (attempt $try): $(tail -n1 "$WORK/sync-$backend.log")"
    done
  fi

  "$BIN" serve >"$WORK/groups-server-$backend.log" 2>&1 &
  SERVER_PID=$!
  wait_ready "$base/readyz" || { cat "$WORK/groups-server-$backend.log" >&2; die "scimd did not start on $backend"; }
  log "scimd on $backend ($base, pid $SERVER_PID)"

  BENCH_TOKEN="$token" "$TOOL" --base "$base" --pid "$SERVER_PID" --backend "$backend" \
    --users "$USERS" --pairs "$PAIRS" --serial-pairs "$SERIAL_PAIRS" --conns "$CONNS" --user-conns "$USER_CONNS" \
    --groups "$NGROUPS" --group-size "$GROUP_SIZE" --batch "$BATCH" --fill-batch 1000 \
    >>"$RESULTS" || { cp "$WORK/groups-server-$backend.log" "$OUT/" 2>/dev/null; die "the load tool failed on $backend"; }

  if grep -qiE 'error|panick' "$WORK/groups-server-$backend.log"; then
    log "server log on $backend has errors:"
    grep -iE 'error|panick' "$WORK/groups-server-$backend.log" | tail -n 20 >&2
  fi
  stop_server
  [ "$backend" = postgres ] && drop_pg_db
  return 0
}

START=$SECONDS
for backend in $BACKENDS; do
  bench_backend "$backend"
done
log "measured in $(( SECONDS - START )) s"

# --- the table ---------------------------------------------------------------------
python3 - "$RESULTS" "$OUT/groups.md" "$CONNS" "$USERS" <<'PY'
import datetime, json, os, subprocess, sys

results, out_path, conns, users = sys.argv[1:5]
rows = [json.loads(l) for l in open(results) if l.strip()]
try:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=True).stdout.strip()
except Exception:
    commit = "unknown"

def ms(v):
    return f"{v:.2f} ms" if v < 100 else f"{v:,.0f} ms"

def mib(kb):
    return "?" if kb is None else f"{kb / 1024:,.0f} MiB"

def failed(r):
    by = r.get("failed_by_status") or {}
    detail = ", ".join(f"{n}× {k}" for k, n in sorted(by.items()))
    return f"{r['errors']}" + (f" ({detail})" if detail else "")

backends = list(dict.fromkeys(r["backend"] for r in rows))
big = int(users)
lines = [
    f"# scimd Groups benchmark, {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} (commit {commit})",
    "",
    f"{os.cpu_count()} CPU cores shared by the load tool, the server and PostgreSQL. Membership "
    "PATCH uses Entra's bodies; each work item is an Add of one user then, on the same "
    "connection, a Remove of that user, so the groups keep their size. req/s is each "
    "operation's count over the run's wall time (adds and removes interleave, so the "
    "connections' total is twice that).",
    "",
    "## Membership PATCH (one member per request, answer 204)",
    "",
    "| backend | operation | group members | conns | requests | req/s | p50 | p99 | max | failed |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
]
patch = {}
for r in rows:
    if r["name"].startswith("PATCH "):
        op = r["name"].split()[1]
        patch[(r["backend"], op, r["group_size"], r["conns"])] = r
        lines.append(f"| {r['backend']} | {r['name']} | {r['group_size']:,} | {r['conns']} | "
                     f"{r['requests']:,} | {r['rps']:,.0f} | {ms(r['p50_ms'])} | {ms(r['p99_ms'])} | "
                     f"{ms(r['max_ms'])} | {failed(r)} |")

lines += ["", "## Loading and provisioning", "",
          "| backend | step | conns | requests | seconds | req/s | p50 | p99 | failed |",
          "|---|---|---:|---:|---:|---:|---:|---:|---|"]
for r in rows:
    n = r["name"]
    if n.startswith("POST /Users") or n.startswith("fill") or n.startswith("provision"):
        c = r.get("conns", "16" if n.startswith("POST /Users") else ("1" if n.startswith("fill") else conns))
        label = n
        if n == "provision":
            label = (f"**provision {r['groups']:,} groups × {r['group_size']} members** "
                     f"(POST, then PATCH of {r['batch']})")
        lines.append(f"| {r['backend']} | {label} | {c} | {r['requests']:,} | {r['seconds']:.1f} | "
                     f"{r['rps']:,.0f} | {ms(r['p50_ms'])} | {ms(r['p99_ms'])} | {failed(r)} |")

lines += ["", f"## GET of the {big:,}-member group (1 connection)", "",
          "| backend | request | requests | p50 | max | response | scimd VmHWM before → after 1st GET → after all | VmRSS before → after all | failed |",
          "|---|---|---:|---:|---:|---:|---:|---:|---|"]
for r in rows:
    if r["name"].startswith("GET "):
        size = r.get("bytes", 0)
        size = f"{size / 1048576:.1f} MiB" if size > 1048576 else f"{size:,} B"
        mem = rss = ""
        if "hwm_before_kb" in r:
            mem = (f"{mib(r['hwm_before_kb'])} → {mib(r.get('hwm_first_kb'))} → "
                   f"{mib(r['hwm_after_kb'])}")
            rss = f"{mib(r['rss_before_kb'])} → {mib(r['rss_after_kb'])}"
        lines.append(f"| {r['backend']} | {r['name']} | {r['requests']} | {ms(r['p50_ms'])} | "
                     f"{ms(r['max_ms'])} | {size} | {mem} | {rss} | {failed(r)} |")

lines += ["", f"## Target: {big:,}-member figures within 1.5× of the 10-member figures", "",
          f"Ratios are big ÷ small for latency and small ÷ big for req/s; met when all three are "
          f"≤ 1.5 and no request failed. The target is judged on the {conns}-connection run; the "
          "1-connection rows (no contention on the group row, 500 pairs, so p99 rests on a "
          "handful of samples) are shown for information.", "",
          "| backend | operation | conns | p50 ratio | p99 ratio | req/s ratio | met |",
          "|---|---|---:|---:|---:|---:|---|"]
for be in backends:
    for c in sorted({k[3] for k in patch if k[0] == be}, reverse=True):
        for op in ("add", "remove"):
            s, b = patch.get((be, op, 10, c)), patch.get((be, op, big, c))
            if not s or not b:
                continue
            p50 = b["p50_ms"] / max(s["p50_ms"], 1e-9)
            p99 = b["p99_ms"] / max(s["p99_ms"], 1e-9)
            rps = s["rps"] / max(b["rps"], 1e-9)
            ok = max(p50, p99, rps) <= 1.5 and b["errors"] == 0 and s["errors"] == 0
            verdict = ("yes" if ok else "NO") if str(c) == conns else ("(yes)" if ok else "(no)")
            lines.append(f"| {be} | PATCH {op} | {c} | {p50:.2f}× | {p99:.2f}× | {rps:.2f}× | "
                         f"{verdict} |")

checks = [r for r in rows if r["name"] == "check"]
bad = [r for r in checks if not r["ok"]]
lines += ["", f"Consistency checks: {len(checks) - len(bad)} of {len(checks)} passed."]
lines += [f"- FAILED ({r['backend']}): {r['detail']}" for r in bad]
text = "\n".join(lines) + "\n"
open(out_path, "w").write(text)
print()
print(text)
PY
for f in "$WORK"/groups-server-*.log; do [ -e "$f" ] && cp "$f" "$OUT/"; done
log "saved $OUT/groups.md (raw results: $OUT/groups.jsonl)"
