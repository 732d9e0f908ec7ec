#!/usr/bin/env bash
# Measures two or more scimd binaries side by side, in one run, on the five
# figures an identity provider drives: GET /Users/{id}, the `userName eq`
# filter, PATCH /Users/{id}, POST /Users and a group-member PATCH, on SQLite
# and on PostgreSQL. This machine's speed drifts by tens of percent within
# minutes, so the binaries take turns, round after round, on the same
# database, and the order flips every round (A B C, then C B A).
# A benchmark, not a test: it exits 0 whatever the figures say (it fails
# only when something breaks). See docs/BENCHMARKS.md, "Side by side".
#
#   scripts/bench-ab.sh A_BIN B_BIN [C_BIN...]
#   make bench-ab A=/tmp/scimd-old B=target/release/scimd
#
# Environment:
#   BENCH_BACKENDS     "sqlite postgres" (default) or one of them
#   BENCH_USERS        users loaded before the rounds (default 20000; at least
#                      that many: the load runs wrk for whole seconds)
#   BENCH_ROUNDS       rounds; each binary is measured once per round (default 2)
#   BENCH_DURATION     seconds per measurement (default 5)
#   BENCH_WARMUP       seconds of unmeasured load before each measurement (default 1)
#   BENCH_GROUP_MEMBERS members of the group whose PATCHes are measured (default 1000)
#   BENCH_PG_URL       admin URL of a PostgreSQL server whose role may CREATE
#                      DATABASE (default: scripts/test-postgres.sh's URL)
#   BENCH_OUT          output directory (default target/bench)
#   A_ENV, B_ENV, ...  extra environment for that binary's commands, as
#                      space-separated NAME=VALUE words (e.g. B_ENV="SCIMD__X=1")
#   A_ORGS, B_ORGS, ...  organizations added to that binary's copy of the
#                      database before the rounds, each with BENCH_ORG_USERS
#                      users (default 1000): the same binary twice, B with
#                      B_ORGS=100, measures a large organization beside 100
#                      small ones (docs/ORGANIZATIONS.md). The binary must
#                      know `scimd org`; POST is measured without them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BACKENDS="${BENCH_BACKENDS:-sqlite postgres}"
USERS="${BENCH_USERS:-20000}"
ROUNDS="${BENCH_ROUNDS:-2}"
DURATION="${BENCH_DURATION:-5}"
WARMUP="${BENCH_WARMUP:-1}"
GROUP_MEMBERS="${BENCH_GROUP_MEMBERS:-1000}"
OUT="${BENCH_OUT:-$ROOT/target/bench}"
# As scripts/bench.sh: 2 wrk threads, reads with 32 connections, writes
# with 16. The group-member PATCH runs one connection per wrk thread, 8 of
# them as scripts/bench-groups.sh, so each connection sends its Add and then
# the Remove of the same member in order.
THREADS=2
READ_CONNS=32
WRITE_CONNS=16
GROUP_CONNS=8

export BENCH_DIR="$ROOT/bench"
export BENCH_BASE_PATH="/scim/v2"

die() { printf 'bench-ab: %s\n' "$*" >&2; exit 2; }
# shellcheck source=scripts/bench-lib.sh
. "$ROOT/scripts/bench-lib.sh"

[ "$#" -ge 2 ] || die "usage: scripts/bench-ab.sh A_BIN B_BIN [C_BIN...] (see the header for the environment)"
[ "$#" -le 26 ] || die "at most 26 binaries"
for n in "$USERS" "$ROUNDS" "$DURATION" "$WARMUP" "$GROUP_MEMBERS"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "BENCH_USERS, BENCH_ROUNDS, BENCH_DURATION, BENCH_WARMUP and BENCH_GROUP_MEMBERS must be positive integers"
done
command -v wrk >/dev/null || die "wrk is required (apt-get install -y wrk)"
command -v curl >/dev/null || die "curl is required"
command -v python3 >/dev/null || die "python3 is required"

mkdir -p "$OUT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/scimd-bench-ab.XXXXXX")"
RESULTS="$WORK/ab.tsv"
: >"$RESULTS"
SHARED_DB=""

cleanup() {
  stop_server
  drop_pg_db
  drop_copies
  PG_DB="$SHARED_DB"
  drop_pg_db
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The binaries, labelled A, B, C...; RUN[i] is what the script runs: the
# binary itself, or a wrapper that adds its ${LABEL}_ENV.
LABELS=() BINS=() RUN=()
i=0
for bin in "$@"; do
  label="$(printf "\\$(printf '%03o' $(( 65 + i )))")"
  [ -x "$bin" ] || die "$label: $bin is not an executable file"
  bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
  envs_var="${label}_ENV"
  envs="${!envs_var:-}"
  run="$bin"
  if [ -n "$envs" ]; then
    run="$WORK/bin-$label"
    {
      echo '#!/usr/bin/env bash'
      printf 'exec env'
      for kv in $envs; do
        [[ "$kv" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "$envs_var: '$kv' is not NAME=VALUE"
        printf ' %q' "$kv"
      done
      printf ' %q "$@"\n' "$bin"
    } >"$run"
    chmod +x "$run"
  fi
  LABELS+=("$label") BINS+=("$bin") RUN+=("$run")
  i=$(( i + 1 ))
done
N=${#BINS[@]}

# One PostgreSQL admin URL for the whole run (start_scimd would otherwise
# ask scripts/test-postgres.sh for it at every fresh database).
if [[ " $BACKENDS " == *" postgres "* ]] && [ -z "${BENCH_PG_URL:-}" ]; then
  BENCH_PG_URL="$("$ROOT/scripts/test-postgres.sh")" || die "no PostgreSQL: set BENCH_PG_URL"
  export BENCH_PG_URL
fi

# Runs wrk and prints its BENCH line (see bench/common.lua).
# Args: lua-script connections threads seconds [script args...]; the URL is $BASE.
run_wrk() {
  local script="$1" conns="$2" threads="$3" secs="$4"
  shift 4
  local out
  out="$(wrk -t"$threads" -c"$conns" -d"${secs}s" --latency -s "$script" "$BASE" -- "$@")" \
    || { printf '%s\n' "$out" >&2; die "wrk failed ($script)"; }
  printf '%s\n' "$out" >>"$WORK/wrk.log"
  grep '^BENCH ' <<<"$out" | tail -n1
}

field() { # BENCH-line key
  sed -n "s/.* $2=\([0-9.]*\).*/\1/p" <<<"$1"
}

# Sends BENCH_WARMUP seconds of unmeasured load to $BASE.
# Args: lua-script connections threads [script args...]
warm() {
  local script="$1" conns="$2" threads="$3"
  shift 3
  run_wrk "$script" "$conns" "$threads" "$WARMUP" "$@" >/dev/null
}

# The CPU time scimd ($SERVER_PID, all its threads) has used so far, in
# clock ticks (/proc/PID/stat: utime + stime).
CLK_TCK="$(getconf CLK_TCK)"
server_ticks() {
  awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"
}
# The same for every PostgreSQL process (0 on SQLite). Backends opened
# during a measurement count from their start; none close during one (the
# pool keeps its connections).
db_ticks() {
  if [ "$1" != postgres ]; then echo 0; return; fi
  local pids
  # A process may end between pgrep and cat (the pipeline must not fail
  # under `set -o pipefail`, which would end the run).
  pids="$({ pgrep -x postgres || true; } | sed 's|^|/proc/|; s|$|/stat|' | tr '\n' ' ')"
  # shellcheck disable=SC2086
  { cat $pids 2>/dev/null || true; } | awk '{t += $14 + $15} END {print t + 0}'
}
per_request() { # ticks requests
  python3 -c 'import sys; t, hz, n = map(float, sys.argv[1:]); print(f"{t * 1e6 / hz / n:.1f}" if n else "0")' \
    "$1" "$CLK_TCK" "$2"
}

# Measures one operation on $BASE and records it: req/s from wrk, and the
# server's CPU time per request (its own work only, not PostgreSQL's or
# wrk's: steadier than req/s when the machine's speed drifts, and what a
# change inside scimd moves).
# Args: backend operation label round lua-script connections threads [script args...]
measure() {
  local backend="$1" op="$2" label="$3" round="$4" script="$5" conns="$6" threads="$7"
  shift 7
  local line errors before after db_before db_after cpu_us db_us
  before="$(server_ticks)" db_before="$(db_ticks "$backend")"
  line="$(run_wrk "$script" "$conns" "$threads" "$DURATION" "$@")"
  after="$(server_ticks)" db_after="$(db_ticks "$backend")"
  errors=$(( $(field "$line" status) + $(field "$line" connect) + $(field "$line" read) \
    + $(field "$line" write) + $(field "$line" timeout) ))
  cpu_us="$(per_request "$(( after - before ))" "$(field "$line" requests)")"
  db_us="$(per_request "$(( db_after - db_before ))" "$(field "$line" requests)")"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$backend" "$op" "$label" "$round" \
    "$(field "$line" rps)" "$(field "$line" p99_us)" "$(field "$line" requests)" "$errors" "$cpu_us" "$db_us" >>"$RESULTS"
  log "$(printf 'round %s %s %-8s %-30s %8s req/s  p99 %7s us  cpu %6s+%s us/req  errors %s' \
    "$round" "$label" "$backend" "$op" "$(field "$line" rps)" "$(field "$line" p99_us)" "$cpu_us" "$db_us" "$errors")"
  [ "$errors" -eq 0 ] || log "WARNING: $errors failed requests in '$op' ($label, $backend)"
}

user_count() {
  curl -fsS -H "Authorization: Bearer $TOKEN" "$BASE/scim/v2/Users?count=0" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["totalResults"])'
}

# The group-member PATCH: Entra's Add of one member, then the Remove of the
# same member, each answered 204, as crates/scimd/examples/groups_bench.rs
# sends them; each wrk thread has one connection and its own share of the
# users that are not in the group.
cat >"$WORK/group_member.lua" <<'LUA'
local common = dofile((os.getenv("BENCH_DIR") or "bench") .. "/common.lua")

setup = common.setup

local path, headers, users, next_user, adding

function init(args)
  common.seed()
  headers = common.auth_headers({ ["Content-Type"] = "application/scim+json" })
  path = common.base .. "/Groups/" .. os.getenv("BENCH_GROUP")
  local all, threads = common.read_lines(os.getenv("BENCH_SPARE")), tonumber(args[1])
  users = {}
  for k = thread_id, #all, threads do users[#users + 1] = all[k] end
  if #users == 0 then error("no spare user for thread " .. thread_id) end
  next_user, adding = 0, true
end

function request()
  local body
  if adding then
    next_user = next_user % #users + 1
    body = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],' ..
      '"Operations":[{"op":"Add","path":"members","value":[{"$ref":null,"value":"' ..
      users[next_user] .. '"}]}]}'
  else
    body = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],' ..
      '"Operations":[{"op":"Remove","path":"members","value":[{"value":"' ..
      users[next_user] .. '"}]}]}'
  end
  adding = not adding
  return wrk.format("PATCH", path, headers, body)
end

done = common.done
LUA

# --- the shared database -------------------------------------------------------
# Loaded once by the first binary: BENCH_USERS users through POST (as
# scripts/bench.sh loads), about 2,000 of them dumped for the reads and the
# PATCHes, and a group of BENCH_GROUP_MEMBERS members.
SHARED_URL="" SHARED_TOKEN=""
load_shared() { # backend
  local backend="$1" count rps secs line round=0
  BIN="${RUN[0]}"
  start_scimd "$backend" ab
  SHARED_URL="$SCIMD__DATABASE__URL" SHARED_DB="$PG_DB" SHARED_TOKEN="$TOKEN"
  PG_DB=""
  export BENCH_TOKEN="$TOKEN"
  secs=1 count=0
  while [ "$count" -lt "$USERS" ]; do
    round=$(( round + 1 ))
    [ "$round" -le 8 ] || die "could not load $USERS users on $backend (have $count)"
    log "loading users on $backend: $count so far, POSTing for ${secs}s"
    line="$(run_wrk "$BENCH_DIR/post_users.lua" "$WRITE_CONNS" "$THREADS" "$secs" "load$round")"
    rps="$(field "$line" rps)"
    count="$(user_count)"
    secs=$(python3 -c "import math; print(max(1, math.ceil(($USERS - $count) / max(float('$rps') * 0.9, 200.0))))")
  done
  echo "$count" >"$WORK/users-$backend.count"

  # The reads' ids and userNames as scripts/bench.sh dumps them (a page of
  # 1,000 from the start and one from the middle of the collection); the
  # group's members from the end; the read ids outside the group are the
  # ones the group-member PATCH adds and removes.
  python3 - "$BASE" "$TOKEN" "$count" "$GROUP_MEMBERS" "$WORK" "$GROUP_CONNS" <<'PY' \
    || die "cannot dump the users and build the group on $backend"
import json, sys, urllib.request
base, token, total, members, work, threads = sys.argv[1:7]
total, members, threads = int(total), int(members), int(threads)

def call(method, path, body=None):
    req = urllib.request.Request(base + "/scim/v2" + path, method=method,
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("Authorization", "Bearer " + token)
    req.add_header("Content-Type", "application/scim+json")
    with urllib.request.urlopen(req) as resp:
        raw = resp.read()
        return json.loads(raw) if raw else None

def page(start, count):
    doc = call("GET", f"/Users?startIndex={start}&count={count}&attributes=userName")
    return [(r["id"], r["userName"]) for r in doc["Resources"]]

reads = {}
for start in (1, max(1, total // 2)):
    reads.update(page(start, 1000))
if len(reads) < 1000:
    sys.exit(f"only {len(reads)} users dumped")
if members >= total:
    sys.exit(f"BENCH_GROUP_MEMBERS ({members}) must be below the user count ({total})")
group = []
start = total - members + 1
while len(group) < members:
    got = page(start, min(1000, members - len(group)))
    if not got:
        break
    group += [i for i, _ in got]
    start += len(got)
in_group = set(group)
spare = [i for i in reads if i not in in_group]
if len(spare) < threads:
    sys.exit(f"only {len(spare)} users outside the group")
gid = call("POST", "/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                               "displayName": "bench-ab"})["id"]
for k in range(0, len(group), 1000):
    call("PATCH", f"/Groups/{gid}", {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Add", "path": "members",
                        "value": [{"value": i} for i in group[k:k + 1000]]}]})
open(f"{work}/ids.txt", "w").write("\n".join(reads) + "\n")
open(f"{work}/usernames.txt", "w").write("\n".join(reads.values()) + "\n")
open(f"{work}/spare.txt", "w").write("\n".join(spare) + "\n")
open(f"{work}/group.txt", "w").write(gid + "\n")
print(f"{len(reads)} users dumped, group {gid} of {len(group)} members, {len(spare)} users to add and remove",
      file=sys.stderr)
PY
  echo "$GROUP_MEMBERS" >"$WORK/group-$backend.count"
  export BENCH_IDS="$WORK/ids.txt" BENCH_USERNAMES="$WORK/usernames.txt"
  export BENCH_SPARE="$WORK/spare.txt" BENCH_GROUP
  BENCH_GROUP="$(cat "$WORK/group.txt")"
  report_server_errors "$backend"
  stop_server
  log "$count users loaded on $backend"
}

# --- a copy of the loaded database per binary ------------------------------------
# Each binary serves its own copy, so a newer binary's migrations (run when it
# starts) never change the schema an older one is measured on.
COPIES=""
copy_url() { # backend index
  case "$1" in
    sqlite) echo "sqlite://$WORK/ab-$2.db" ;;
    postgres) echo "${SHARED_URL%/*}/${SHARED_DB}_$2" ;;
  esac
}
make_copies() { # backend
  local k f
  for k in $(seq 0 $(( N - 1 ))); do
    case "$1" in
      sqlite)
        for f in "$WORK"/ab.db*; do cp "$f" "${f/ab.db/ab-$k.db}"; done ;;
      postgres)
        psql "$SHARED_URL" -qAtc "CREATE DATABASE \"${SHARED_DB}_$k\" TEMPLATE \"$SHARED_DB\"" >/dev/null \
          || die "cannot copy $SHARED_DB for binary $k"
        COPIES="$COPIES ${SHARED_DB}_$k" ;;
    esac
  done
}
drop_copies() {
  local db
  for db in $COPIES; do PG_DB="$db" drop_pg_db; done
  COPIES=""
  rm -f "$WORK"/ab-*.db*
}

# --- organizations added to one binary's copy ------------------------------------
# ${LABEL}_ORGS organizations bench-1..N, each with its SAML, synchronization
# and token set up through the CLI and BENCH_ORG_USERS users created through
# its /Bulk (1,000 operations per request at most).
ORG_USERS="${BENCH_ORG_USERS:-1000}"
add_orgs() { # backend index
  local backend="$1" idx="$2" label="${LABELS[$2]}" orgs_var n k port secret
  orgs_var="${LABELS[$2]}_ORGS"
  n="${!orgs_var:-0}"
  [ "$n" -gt 0 ] || return 0
  local url bin="${RUN[$idx]}" pem="$ROOT/crates/scim-admin/tests/fixtures/idp-signing.pem"
  url="$(copy_url "$backend" "$idx")"
  log "adding $n organizations of $ORG_USERS users to $label's copy on $backend"
  : >"$WORK/orgs-$label.tsv"
  for k in $(seq 1 "$n"); do
    SCIMD__DATABASE__URL="$url" "$bin" org create "bench-$k" --name "Bench $k" >/dev/null \
      || die "cannot create organization bench-$k"
    SCIMD__DATABASE__URL="$url" "$bin" --org "bench-$k" saml set --entity-id "https://idp.example/$k" \
      --sso-url "https://idp.example/$k/sso" --certificate "$pem" >/dev/null || die "saml bench-$k"
    SCIMD__DATABASE__URL="$url" "$bin" --org "bench-$k" sync enable --accept-cautions >/dev/null \
      || die "sync bench-$k"
    secret="$(SCIMD__DATABASE__URL="$url" "$bin" --org "bench-$k" token create --name bench | grep -E '^scimd_' | head -n1)"
    printf 'bench-%s\t%s\n' "$k" "$secret" >>"$WORK/orgs-$label.tsv"
  done
  port="$(free_port)"
  SCIMD__DATABASE__URL="$url" SCIMD__SERVER__BIND="127.0.0.1:$port" "$bin" serve \
    >"$WORK/$label-orgs-server-$backend.log" 2>&1 &
  SERVER_PID=$!
  wait_ready "http://127.0.0.1:$port/readyz" || die "$label did not start on $backend"
  python3 - "http://127.0.0.1:$port" "$WORK/orgs-$label.tsv" "$ORG_USERS" <<'PY' \
    || die "cannot load the organizations' users"
import json, sys, urllib.request
base, orgs, per = sys.argv[1], sys.argv[2], int(sys.argv[3])
for line in open(orgs):
    slug, token = line.split()
    for start in range(0, per, 1000):
        ops = [{"method": "POST", "path": "/Users", "bulkId": f"u{i}",
                "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                         "userName": f"user{i}@{slug}.example", "active": True,
                         "displayName": f"User {i}", "title": "Engineer",
                         "emails": [{"value": f"user{i}@{slug}.example", "type": "work", "primary": True}]}}
               for i in range(start, min(per, start + 1000))]
        req = urllib.request.Request(f"{base}/scim/v2/o/{slug}/Bulk", method="POST",
            data=json.dumps({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                             "Operations": ops}).encode())
        req.add_header("Authorization", "Bearer " + token)
        req.add_header("Content-Type", "application/scim+json")
        with urllib.request.urlopen(req) as resp:
            doc = json.load(resp)
        bad = [o for o in doc["Operations"] if o["status"] != "201"]
        if bad:
            sys.exit(f"{slug}: {len(bad)} creates failed, e.g. {bad[0]}")
PY
  stop_server
}

# --- one binary's turn -----------------------------------------------------------
# Round 0 is an unmeasured turn (warm-ups only, no POST): see below.
turn() { # backend index round
  local backend="$1" idx="$2" round="$3"
  local label="${LABELS[$idx]}" port
  # Every turn starts from a vacuumed database: PATCHes leave dead rows, and
  # an autovacuum run that starts in one binary's turn would count against it.
  if [ "$backend" = postgres ]; then
    # client_min_messages: no warning for each shared catalog the role may not vacuum.
    PGOPTIONS="-c client_min_messages=error" psql "$(copy_url "$backend" "$idx")" -qAtc "VACUUM (ANALYZE)" >/dev/null \
      || die "VACUUM failed on ${SHARED_DB}_$idx"
  fi

  port="$(free_port)"
  SCIMD__DATABASE__URL="$(copy_url "$backend" "$idx")"
  export SCIMD__DATABASE__URL
  export SCIMD__SERVER__BIND="127.0.0.1:$port"
  BASE="http://127.0.0.1:$port"
  TOKEN="$SHARED_TOKEN" BENCH_TOKEN="$SHARED_TOKEN"
  SERVER_LOG="$WORK/$label-r$round-server-$backend.log"
  "${RUN[$idx]}" serve >"$SERVER_LOG" 2>&1 &
  SERVER_PID=$!
  wait_ready "$BASE/readyz" || { cat "$SERVER_LOG" >&2; die "$label did not start on $backend"; }
  local script
  for script in get_id get_filter patch_user; do
    local conns="$READ_CONNS" op
    case "$script" in
      get_id) op="GET /Users/{id}" ;;
      get_filter) op="GET /Users?filter=userName eq" ;;
      patch_user) op="PATCH /Users/{id}" conns="$WRITE_CONNS" ;;
    esac
    warm "$BENCH_DIR/$script.lua" "$conns" "$THREADS"
    [ "$round" -eq 0 ] || measure "$backend" "$op" "$label" "$round" "$BENCH_DIR/$script.lua" "$conns" "$THREADS"
  done
  warm "$WORK/group_member.lua" "$GROUP_CONNS" "$GROUP_CONNS" "$GROUP_CONNS"
  [ "$round" -eq 0 ] || measure "$backend" "PATCH /Groups/{id} member" "$label" "$round" \
    "$WORK/group_member.lua" "$GROUP_CONNS" "$GROUP_CONNS" "$GROUP_CONNS"
  report_server_errors "$backend"
  stop_server
  [ "$round" -gt 0 ] || return 0

  # POST on a fresh, empty database of its own (as scripts/bench.sh
  # measures it), so the shared one does not grow from turn to turn.
  BIN="${RUN[$idx]}"
  local name="abpost-${label,,}$round"
  start_scimd "$backend" "$name"
  BENCH_TOKEN="$TOKEN"
  warm "$BENCH_DIR/post_users.lua" "$WRITE_CONNS" "$THREADS" warm
  measure "$backend" "POST /Users" "$label" "$round" "$BENCH_DIR/post_users.lua" "$WRITE_CONNS" "$THREADS" run
  report_server_errors "$backend"
  stop_server
  drop_pg_db
  rm -f "$WORK/$name.db"*
}

START=$SECONDS
for backend in $BACKENDS; do
  load_shared "$backend"
  make_copies "$backend"
  for idx in $(seq 0 $(( N - 1 ))); do add_orgs "$backend" "$idx"; done
  # The first turn after the load measured low more often than not (GET by
  # id most of all), which would count against A: an unmeasured turn takes it.
  log "an unmeasured turn of A on $backend"
  turn "$backend" 0 0
  for round in $(seq 1 "$ROUNDS"); do
    order=$(seq 0 $(( N - 1 )))
    [ $(( round % 2 )) -eq 1 ] || order=$(seq $(( N - 1 )) -1 0)
    log "round $round on $backend: $(for k in $order; do printf '%s ' "${LABELS[$k]}"; done)"
    for idx in $order; do
      turn "$backend" "$idx" "$round"
    done
  done
  drop_copies
  PG_DB="$SHARED_DB"
  drop_pg_db
  SHARED_DB=""
  rm -f "$WORK/ab.db"*
done
log "measured in $(( SECONDS - START )) s"

# --- the table ---------------------------------------------------------------------
BIN_LIST="$WORK/binaries.tsv"
: >"$BIN_LIST"
for k in $(seq 0 $(( N - 1 ))); do
  envs_var="${LABELS[$k]}_ENV"
  printf '%s\t%s\t%s\t%s\t%s\n' "${LABELS[$k]}" "${BINS[$k]}" \
    "$("${BINS[$k]}" --version 2>/dev/null | head -n1 || true)" \
    "$(sha256sum "${BINS[$k]}" | cut -c1-12)" "${!envs_var:-}" >>"$BIN_LIST"
done
python3 - "$RESULTS" "$OUT/ab.md" "$BIN_LIST" "$WORK" "$BACKENDS" "$ROUNDS" "$DURATION" "$WARMUP" <<'PY'
import datetime, os, statistics, sys

results, out_path, bin_list, work, backends, rounds, duration, warmup = sys.argv[1:9]
rounds = int(rounds)
rows = [l.rstrip("\n").split("\t") for l in open(results) if l.strip()]
bins = [l.rstrip("\n").split("\t") for l in open(bin_list) if l.strip()]
labels = [b[0] for b in bins]

def read(name):
    p = os.path.join(work, name)
    return open(p).read().strip() if os.path.exists(p) else "?"

def order(r):
    return " ".join(labels if r % 2 == 1 else labels[::-1])

lines = [f"# scimd side by side, {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}", ""]
for label, path, version, sha, env in bins:
    extra = f", with `{env}`" if env else ""
    lines.append(f"- **{label}**: `{path}` ({version or 'no --version'}, sha256 {sha}…){extra}")
lines += [
    "",
    f"{rounds} rounds ({'; '.join(f'{r}: {order(r)}' for r in range(1, rounds + 1))}), "
    f"each binary started in turn on the same database, never two at once; wrk, "
    f"{warmup} s warm-up then {duration} s per measurement, --latency. "
    f"{os.cpu_count()} CPU cores shared by wrk, the server and PostgreSQL. "
    + ", ".join(f"{b}: {read(f'users-{b}.count')} users, a group of "
                f"{read(f'group-{b}.count')} members" for b in backends.split()) + ".",
    "",
    "| backend | operation | binary | "
    + " | ".join(f"round {r}" for r in range(1, rounds + 1))
    + " | median req/s | spread | p99 | vs A | scimd CPU µs/req | vs A | PostgreSQL CPU µs/req | vs A | failed |",
    "|---|---|---|" + "---:|" * rounds + "---:|---:|---:|---:|---:|---:|---:|---:|---:|",
]
ops = list(dict.fromkeys(r[1] for r in rows))
for be in backends.split():
    for op in ops:
        base = cpu_base = db_base = None
        for label in labels:
            mine = {int(r[3]): r for r in rows if r[0] == be and r[1] == op and r[2] == label}
            if not mine:
                continue
            rps = [float(mine[k][4]) for k in sorted(mine)]
            med = statistics.median(rps)
            p99 = statistics.median(int(mine[k][5]) for k in mine) / 1000
            failed = sum(int(mine[k][7]) for k in mine)
            if base is None:
                base, change = med, "—"
            else:
                change = f"{100 * (med / base - 1):+.1f}%" if base else "?"
            spread = f"{100 * (max(rps) - min(rps)) / med:.0f}%" if med else "?"
            cpu = statistics.median(float(mine[k][8]) for k in mine)
            if cpu_base is None:
                cpu_base, cpu_change = cpu, "—"
            else:
                cpu_change = f"{100 * (cpu / cpu_base - 1):+.1f}%" if cpu_base else "?"
            db = statistics.median(float(mine[k][9]) for k in mine)
            if db_base is None:
                db_base, db_change = db, "—"
            else:
                db_change = f"{100 * (db / db_base - 1):+.1f}%" if db_base else "—"
            db_cells = f"{db:.0f} | {db_change}" if be == "postgres" else "— | —"
            cells = [f"{float(mine[r][4]):,.0f}" if r in mine else "-" for r in range(1, rounds + 1)]
            lines.append(f"| {be} | {op} | {label} | " + " | ".join(cells)
                         + f" | {med:,.0f} | {spread} | {p99:.2f} ms | {change} | {cpu:.0f} | {cpu_change} | {db_cells} | {failed} |")
lines += [
    "",
    "- The database is loaded once per backend by A (POST, as scripts/bench.sh loads), then "
    "served by an unmeasured turn of A; the reads, the user PATCH and the group-member PATCH "
    "run on it. PostgreSQL gets a `VACUUM (ANALYZE)` before every turn.",
    "- POST /Users is measured on a fresh database of its own for each binary and round, "
    "empty but for the warm-up's users (scripts/bench.sh measures it from an empty table), "
    "so POSTs never grow the shared database.",
    "- Connections: reads 32, POST and user PATCH 16 (2 wrk threads), group-member PATCH 8 "
    "(8 wrk threads, one connection each: an Add of one member, then its Remove). Its req/s "
    "counts adds and removes together.",
    "- spread is (highest − lowest round) ÷ median: a change against A smaller than the "
    "spreads is noise. p99 is the median of the rounds' p99; vs A compares the median req/s; "
    "failed counts answers outside 2xx/3xx and socket errors over all rounds.",
    "- scimd CPU µs/req is the CPU time scimd used (all its threads, user and system, from "
    "/proc) during the measurement divided by the requests wrk counted, median of the rounds; "
    "PostgreSQL CPU µs/req the same for every `postgres` process. wrk's CPU is in neither. "
    "They move less than req/s when the machine's speed drifts (not when other work shares "
    "the cores), and they say where a change costs: in scimd (metrics, say) or in the "
    "database (a query plan).",
]
text = "\n".join(lines) + "\n"
open(out_path, "w").write(text)
print()
print(text)
PY
cp "$RESULTS" "$OUT/ab.tsv"
cp "$WORK/wrk.log" "$OUT/ab-wrk.log"
log "saved $OUT/ab.md (raw: $OUT/ab.tsv, $OUT/ab-wrk.log)"
