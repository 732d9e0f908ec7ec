#!/usr/bin/env bash
# Counts the CPU instructions scimd executes per request, under valgrind's
# callgrind, for two or more binaries: GET /Users/{id}, the `userName eq`
# filter, PATCH /Users/{id} and POST /Users, one request at a time, on
# SQLite. Unlike req/s (scripts/bench-ab.sh), an instruction count does not
# drift with the machine's speed or with other work sharing the cores, so
# a change of a few percent inside scimd (the metrics it records, say)
# shows up, where req/s on this machine moves by tens of percent.
#
# It counts scimd's instructions only, not the time spent waiting on the
# disk or on locks, and one request at a time: it says what a change costs
# in work, not how throughput under concurrency moves. Use it beside
# scripts/bench-ab.sh, not instead. See docs/BENCHMARKS.md.
# A benchmark, not a test: it exits 0 whatever the figures say.
#
#   scripts/bench-instructions.sh A_BIN B_BIN [C_BIN...]
#
# Environment:
#   INSTR_REQUESTS   requests counted per operation (default 1000)
#   INSTR_ROUNDS     rounds; each binary is counted once per round (default 2)
#   INSTR_USERS      users loaded first (default 2000)
#   A_ENV, B_ENV, ...  extra environment for that binary, as space-separated
#                    NAME=VALUE words (e.g. A_ENV="SCIMD__METRICS__ENABLED=false")
#   BENCH_OUT        output directory (default target/bench)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

REQUESTS="${INSTR_REQUESTS:-1000}"
ROUNDS="${INSTR_ROUNDS:-2}"
USERS="${INSTR_USERS:-2000}"
OUT="${BENCH_OUT:-$ROOT/target/bench}"

die() { printf 'bench-instructions: %s\n' "$*" >&2; exit 2; }
[ "$#" -ge 2 ] || die "usage: scripts/bench-instructions.sh A_BIN B_BIN [C_BIN...] (see the header)"
for n in "$REQUESTS" "$ROUNDS" "$USERS"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "INSTR_REQUESTS, INSTR_ROUNDS and INSTR_USERS must be positive integers"
done
command -v valgrind >/dev/null && command -v callgrind_control >/dev/null \
  || die "valgrind is required (apt-get install -y valgrind)"
command -v python3 >/dev/null || die "python3 is required"
command -v openssl >/dev/null || die "openssl is required"

mkdir -p "$OUT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/scimd-instr.XXXXXX")"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
log() { printf '==> %s\n' "$*" >&2; }

LABELS=() BINS=()
i=0
for bin in "$@"; do
  label="$(printf "\\$(printf '%03o' $(( 65 + i )))")"
  [ -x "$bin" ] || die "$label: $bin is not an executable file"
  LABELS+=("$label") BINS+=("$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")")
  i=$(( i + 1 ))
done
N=${#BINS[@]}

env_of() { # index: the NAME=VALUE words of that binary's environment
  local var="${LABELS[$1]}_ENV"
  printf '%s' "${!var:-}"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# One database, loaded by A; each binary counts on its own copy of it, so
# that no binary's migrations change what another is measured on.
DB="$WORK/load.db"
export SCIMD__DATABASE__URL="sqlite://$DB"
"${BINS[0]}" migrate >"$WORK/migrate.log" 2>&1 || { cat "$WORK/migrate.log" >&2; die "migrate failed"; }
TOKEN="$("${BINS[0]}" token create --name instructions 2>/dev/null | grep -E '^scimd_' | head -n1)"
[ -n "$TOKEN" ] || die "no token"
SCIMD_ARGS="" "$ROOT/scripts/enable-sync.sh" "${BINS[0]}"

# The client: one keep-alive connection, one request at a time.
cat >"$WORK/client.py" <<'PY'
import http.client, json, random, sys
port, token, op, n, tag = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
ids = [l.split("\t") for l in open(sys.argv[6]).read().split("\n") if l]
c = http.client.HTTPConnection("127.0.0.1", int(port))
h = {"Authorization": "Bearer " + token, "Content-Type": "application/scim+json"}
rnd = random.Random(7)
for i in range(n):
    uid, name = rnd.choice(ids) if ids else ("", "")
    if op == "get_id":
        c.request("GET", "/scim/v2/Users/" + uid, headers=h)
    elif op == "get_filter":
        c.request("GET", "/scim/v2/Users?filter=userName%20eq%20%22" + name + "%22", headers=h)
    elif op == "patch_user":
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "Replace", "path": "title", "value": "Title %d" % rnd.randrange(10**9)}]}
        c.request("PATCH", "/scim/v2/Users/" + uid, body=json.dumps(body), headers=h)
    elif op == "post_user":
        user = "instr-%s-%d" % (tag, i)
        body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user,
                "externalId": "ext-" + user, "active": True,
                "name": {"givenName": "Bench", "familyName": "User %d" % i},
                "displayName": "Bench User %d" % i,
                "emails": [{"value": user + "@example.com", "type": "work", "primary": True}]}
        c.request("POST", "/scim/v2/Users", body=json.dumps(body), headers=h)
    r = c.getresponse()
    r.read()
    if r.status >= 300:
        sys.exit("%s answered %d" % (op, r.status))
PY

start() { # index name: starts that binary under callgrind on its copy; sets SERVER_PID, PORT
  local idx="$1" name="$2" envs
  envs="$(env_of "$idx")"
  PORT="$(free_port)"
  # shellcheck disable=SC2086
  env $envs SCIMD__DATABASE__URL="sqlite://$WORK/$name.db" SCIMD__SERVER__BIND="127.0.0.1:$PORT" \
    SCIMD__SERVER__WORKERS=1 \
    valgrind --tool=callgrind --callgrind-out-file="$WORK/$name.cg.%p" "${BINS[$idx]}" serve \
    >"$WORK/$name.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 600); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz" 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  cat "$WORK/$name.log" >&2
  die "${LABELS[$idx]} did not start under callgrind"
}

# Load the users (A, without callgrind), and dump their ids and userNames.
PORT="$(free_port)"
SCIMD__SERVER__BIND="127.0.0.1:$PORT" "${BINS[0]}" serve >"$WORK/load.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz" 2>/dev/null && break; sleep 0.1; done
: >"$WORK/none.tsv"
log "loading $USERS users"
python3 "$WORK/client.py" "$PORT" "$TOKEN" post_user "$USERS" load "$WORK/none.tsv"
curl -fsS -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/scim/v2/Users?count=$USERS&attributes=userName" \
  | python3 -c 'import json,sys; print("\n".join(r["id"] + "\t" + r["userName"] for r in json.load(sys.stdin)["Resources"]))' \
  >"$WORK/users.tsv"
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
sqlite3_copy() { python3 -c 'import sqlite3,sys; s=sqlite3.connect(sys.argv[1]); d=sqlite3.connect(sys.argv[2]); s.backup(d)' "$1" "$2"; }

RESULTS="$WORK/instr.tsv"
: >"$RESULTS"
OPS="get_id get_filter patch_user post_user"
for round in $(seq 1 "$ROUNDS"); do
  order=$(seq 0 $(( N - 1 )))
  [ $(( round % 2 )) -eq 1 ] || order=$(seq $(( N - 1 )) -1 0)
  for idx in $order; do
    label="${LABELS[$idx]}" name="${LABELS[$idx]}-r$round"
    rm -f "$WORK/$name.db"*
    sqlite3_copy "$DB" "$WORK/$name.db"
    start "$idx" "$name"
    # Unmeasured: the first requests fill caches, prepare statements.
    for op in $OPS; do
      python3 "$WORK/client.py" "$PORT" "$TOKEN" "$op" 100 "w$round$label" "$WORK/users.tsv"
    done
    part=0
    for op in $OPS; do
      callgrind_control -z "$SERVER_PID" >/dev/null
      python3 "$WORK/client.py" "$PORT" "$TOKEN" "$op" "$REQUESTS" "r$round$label" "$WORK/users.tsv"
      callgrind_control -d "$SERVER_PID" >/dev/null
      part=$(( part + 1 ))
      total="$(callgrind_annotate "$(ls "$WORK/$name.cg."*".$part")" 2>/dev/null \
        | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')"
      printf '%s\t%s\t%s\t%s\n' "$op" "$label" "$round" "$(( total / REQUESTS ))" >>"$RESULTS"
      log "round $round $label $op: $(( total / REQUESTS )) instructions per request"
    done
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
  done
done

BIN_LIST="$WORK/binaries.tsv"
: >"$BIN_LIST"
for k in $(seq 0 $(( N - 1 ))); do
  printf '%s\t%s\t%s\t%s\n' "${LABELS[$k]}" "${BINS[$k]}" "$(sha256sum "${BINS[$k]}" | cut -c1-12)" "$(env_of "$k")" >>"$BIN_LIST"
done
python3 - "$RESULTS" "$BIN_LIST" "$OUT/instructions.md" "$REQUESTS" "$ROUNDS" "$USERS" <<'PY'
import datetime, statistics, sys
results, bin_list, out, requests, rounds, users = sys.argv[1:7]
rows = [l.rstrip("\n").split("\t") for l in open(results) if l.strip()]
bins = [l.rstrip("\n").split("\t") for l in open(bin_list) if l.strip()]
names = {"get_id": "GET /Users/{id}", "get_filter": "GET /Users?filter=userName eq",
         "patch_user": "PATCH /Users/{id}", "post_user": "POST /Users"}
lines = [f"# scimd instructions per request, {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}", ""]
for label, path, sha, env in bins:
    lines.append(f"- **{label}**: `{path}` (sha256 {sha}…)" + (f", with `{env}`" if env else ""))
lines += ["", f"SQLite, {users} users, one worker, one request at a time, {requests} requests per "
          f"operation after 100 unmeasured, {rounds} rounds; callgrind's count of every instruction "
          "scimd executed (all its threads) between the first and the last request, divided by the "
          "requests.", "",
          "| operation | binary | " + " | ".join(f"round {r}" for r in range(1, int(rounds) + 1))
          + " | median | vs A |",
          "|---|---|" + "---:|" * (int(rounds) + 2)]
for op in names:
    base = None
    for b in bins:
        mine = {int(r[2]): int(r[3]) for r in rows if r[0] == op and r[1] == b[0]}
        if not mine:
            continue
        med = statistics.median(mine.values())
        change = "—" if base is None else f"{100 * (med / base - 1):+.1f}%"
        base = med if base is None else base
        lines.append(f"| {names[op]} | {b[0]} | " + " | ".join(f"{mine.get(r, 0):,}" for r in range(1, int(rounds) + 1))
                     + f" | {med:,.0f} | {change} |")
text = "\n".join(lines) + "\n"
open(out, "w").write(text)
print(text)
PY
log "saved $OUT/instructions.md"
