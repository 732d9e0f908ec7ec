#!/usr/bin/env bash
# Measures scimd's memory (VmRSS) under bursts of Argon2id work: 150
# parallel admin sign-ins, then 128 parallel SCIM user POSTs carrying a
# `password`. Every hash runs on one bounded gate (server.password_hash_*),
# so the peak must stay far below one 19 MiB Argon2 buffer per request, and
# memory must come back afterwards. Runs on SQLite (the hashing does not
# touch the database). A benchmark, not a test: it prints the figures and
# exits 0 (it fails only when something breaks). See docs/BENCHMARKS.md.
#
#   make bench               # builds the release binary, runs this too
#   scripts/bench-memory.sh  # uses target/release/scimd as it is
#
# Environment:
#   SCIMD_BIN      binary to measure (default target/release/scimd)
#   MEM_SIGNINS    parallel sign-ins (default 150)
#   MEM_POSTS      parallel password-bearing POSTs (default 128)
#   MEM_SETTLE     seconds to let memory settle after a burst (default 15:
#                  tokio's idle blocking threads exit after 10 s, and
#                  mimalloc returns their pages then)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BIN="${SCIMD_BIN:-$ROOT/target/release/scimd}"
SIGNINS="${MEM_SIGNINS:-150}"
POSTS="${MEM_POSTS:-128}"
SETTLE="${MEM_SETTLE:-15}"
PASSWORD="memory bench password"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench-memory: %s\n' "$*" >&2; exit 2; }

[ -x "$BIN" ] || die "$BIN not found: run 'cargo build --release -p scimd' first"
command -v curl >/dev/null || die "curl is required"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/scimd-mem.XXXXXX")"
SERVER_PID=""
SAMPLER_PID=""
cleanup() {
  [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null || true
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
export SCIMD__DATABASE__URL="sqlite://$WORK/scimd.db"
export SCIMD__SERVER__BIND="127.0.0.1:$PORT"
export SCIMD__LOG__LEVEL="warn"
# Every sign-in comes from 127.0.0.1 with the right password: raise the
# attempt limits so that the burst measures hashing, not the limiter.
export SCIMD__ADMIN__LOGIN_MAX_FAILURES=100000
export SCIMD__ADMIN__LOGIN_SLOW_AFTER=100000

"$BIN" migrate >/dev/null
printf '%s\n' "$PASSWORD" >"$WORK/password"
"$BIN" admin create --username root --password-file "$WORK/password" >/dev/null
scripts/enable-sync.sh "$BIN"
TOKEN="$("$BIN" token create --name bench 2>/dev/null | grep -E '^scimd_' | head -n1 || true)"
[ -n "$TOKEN" ] || die "scimd token create printed no secret"

"$BIN" serve >"$WORK/scimd.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  curl -fsS "$BASE/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "$BASE/healthz" >/dev/null || die "scimd did not start: $(cat "$WORK/scimd.log")"

rss() { awk '/^VmRSS/ {print int($2 / 1024)}' "/proc/$SERVER_PID/status"; }
# The sampler writes one VmRSS figure (MiB) per line, every 20 ms.
sample() {
  while kill -0 "$SERVER_PID" 2>/dev/null; do
    rss >>"$WORK/samples"
    sleep 0.02
  done
}
peak_since() { tail -n "+$1" "$WORK/samples" | sort -n | tail -n1; }
lines() { wc -l <"$WORK/samples"; }

# One request of each kind first, so the baseline includes what any
# running server holds (pools, templates, the first Argon2 buffer).
curl -sS -o /dev/null -H 'Content-Type: application/json' \
  -d "{\"username\":\"root\",\"password\":\"$PASSWORD\"}" "$BASE/admin/api/v1/session"
curl -sS -o /dev/null -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/scim+json' \
  -d '{"userName":"warmup","password":"a warm-up password"}' "$BASE/scim/v2/Users"
sleep "$SETTLE"
: >"$WORK/samples"
sample &
SAMPLER_PID=$!
BASELINE="$(rss)"
log "baseline VmRSS ${BASELINE} MiB"

# burst NAME COUNT CURL-ARGS...: COUNT parallel curls ({} is the request's
# number), the peak VmRSS meanwhile and the VmRSS once settled.
burst() {
  local name="$1" count="$2" from peak codes after
  shift 2
  from="$(($(lines) + 1))"
  seq 1 "$count" | xargs -P "$count" -I{} \
    curl -s -o /dev/null -w '%{http_code}\n' "$@" >"$WORK/codes"
  peak="$(peak_since "$from")"
  codes="$(sort "$WORK/codes" | uniq -c | awk '{printf "%s x %s  ", $1, $2}')"
  sleep "$SETTLE"
  after="$(rss)"
  printf '%-36s peak %4s MiB, after %ss %4s MiB (baseline %s MiB); answers: %s\n' \
    "$name ($count parallel)" "$peak" "$SETTLE" "$after" "$BASELINE" "$codes"
}

echo "scimd memory under Argon2id bursts ($(nproc) cores; password_hash_concurrency = one per core)"
burst "admin sign-ins" "$SIGNINS" \
  -H 'Content-Type: application/json' \
  -d "{\"username\":\"root\",\"password\":\"$PASSWORD\"}" "$BASE/admin/api/v1/session"
burst "SCIM POST /Users with a password" "$POSTS" \
  -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/scim+json' \
  -d '{"userName":"mem-{}","password":"a password for this user"}' "$BASE/scim/v2/Users"
