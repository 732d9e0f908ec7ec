#!/usr/bin/env bash
# SCIM 2.0 conformance: runs the public checker scim2-tester (PyPI, by Yaal
# Coop) against a fresh scimd on a temporary SQLite database.
#
#   make conformance            # builds the debug binary, then runs this
#   scripts/conformance.sh      # uses target/debug/scimd as it is
#
# The checker is installed, with every dependency pinned, into .venv/ (created
# when missing). It reads the server's discovery endpoints, then runs its
# create/read/replace/delete/PATCH checks for every advertised resource type.
#
# Exit status: 0 when no check about discovery (ServiceProviderConfig,
# ResourceTypes, Schemas) or about a gated resource type (CONFORMANCE_GATE,
# default "User Group") ends in ERROR or CRITICAL; 1 otherwise; 2 on a set-up
# failure. Other results are printed but do not fail the run.
#
# Environment:
#   SCIMD_BIN          binary to test (default target/debug/scimd)
#   CONFORMANCE_GATE   space-separated resource types whose failures fail the
#                      run (default "User Group")
#   CONFORMANCE_OUT    directory for the JSON report and the HTTP log
#                      (default target/conformance)
#   CONFORMANCE_ORG    run against this organization (created first) at
#                      /scim/v2/o/SLUG, with its own token and switch
#                      (docs/ORGANIZATIONS.md); default: the default
#                      organization at /scim/v2
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BIN="${SCIMD_BIN:-$ROOT/target/debug/scimd}"
GATE="${CONFORMANCE_GATE:-User Group}"
ORG="${CONFORMANCE_ORG:-}"
OUT="${CONFORMANCE_OUT:-$ROOT/target/conformance}"
VENV="$ROOT/.venv"

# Every package the checker needs, pinned (pip freeze of a working install),
# so two machines run the very same checks.
REQUIREMENTS="annotated-types==0.8.0
anyio==4.16.0
dnspython==2.9.2
email-validator==2.4.0
h11==0.16.0
httpcore2==2.16.2
httpx2==2.16.2
idna==3.20
lark==1.3.1
pydantic==2.14.4
pydantic_core==2.50.5
scim2-client==0.13.2
scim2-models==0.12.3
scim2-tester==0.5.2
truststore==0.10.5
typing-inspection==0.4.5
typing_extensions==4.16.0"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'conformance: %s\n' "$*" >&2; exit 2; }

[ -x "$BIN" ] || die "$BIN not found: run 'make conformance' (or 'cargo build -p scimd') first"
command -v python3 >/dev/null || die "python3 is required"

# --- the checker, in .venv/ ---------------------------------------------------
make_venv() {
  if python3 -m venv "$VENV" >/dev/null 2>&1; then return 0; fi
  # Debian without python3-venv has no ensurepip: borrow the system pip
  # (python3-pip), which installs into the venv once it runs inside one.
  rm -rf "$VENV"
  python3 -m venv --without-pip --system-site-packages "$VENV" \
    || die "cannot create $VENV: install python3-venv (apt-get install -y python3-venv)"
  "$VENV/bin/python" -m pip --version >/dev/null 2>&1 \
    || die "no pip for $VENV: install python3-venv or python3-pip"
}
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  make_venv
fi
STAMP="$VENV/.scimd-conformance-requirements"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$REQUIREMENTS" ]; then
  log "installing scim2-tester into $VENV"
  printf '%s\n' "$REQUIREMENTS" > "$VENV/conformance-requirements.txt"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r "$VENV/conformance-requirements.txt" || die "pip install failed"
  printf '%s' "$REQUIREMENTS" > "$STAMP"
fi

# --- a fresh server -----------------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/scimd-conformance.XXXXXX")"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    # Graceful shutdown first; the checker's connections are already closed.
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export SCIMD__DATABASE__URL="sqlite://$WORK/scimd.db"
export SCIMD__SERVER__BIND="127.0.0.1:$PORT"
export SCIMD__LOG__LEVEL="${SCIMD__LOG__LEVEL:-warn}"

"$BIN" migrate >"$WORK/migrate.log" 2>&1 || { cat "$WORK/migrate.log" >&2; die "scimd migrate failed"; }
ORG_ARGS="" SCIM_PATH="/scim/v2"
if [ -n "$ORG" ]; then
  "$BIN" org create "$ORG" --name "Conformance" >"$WORK/org.log" 2>&1 || { cat "$WORK/org.log" >&2; die "scimd org create failed"; }
  ORG_ARGS="--org $ORG" SCIM_PATH="/scim/v2/o/$ORG"
fi
SCIMD_ARGS="$ORG_ARGS" "$ROOT/scripts/enable-sync.sh" "$BIN" >"$WORK/sync.log" 2>&1 || { cat "$WORK/sync.log" >&2; die "enabling User Synchronization failed"; }
# shellcheck disable=SC2086
TOKEN="$("$BIN" $ORG_ARGS token create --name conformance 2>"$WORK/token.err" | grep -E '^scimd_' | head -n1 || true)"
[ -n "$TOKEN" ] || { cat "$WORK/token.err" >&2; die "scimd token create printed no secret"; }

log "starting scimd on 127.0.0.1:$PORT ($SCIMD__DATABASE__URL)"
"$BIN" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

BASE="http://127.0.0.1:$PORT"
python3 - "$BASE/readyz" <<'PY' || { cat "$WORK/server.log" >&2; die "scimd did not become ready"; }
import sys, time, urllib.request
for _ in range(100):
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=1) as r:
            if r.status == 200:
                sys.exit(0)
    except Exception:
        pass
    time.sleep(0.1)
sys.exit(1)
PY

# --- the checks -----------------------------------------------------------------
mkdir -p "$OUT"
log "running scim2-tester against $BASE$SCIM_PATH"
set +e
SCIM_TOKEN="$TOKEN" "$VENV/bin/python" - "$BASE$SCIM_PATH" "$GATE" "$OUT" <<'PY'
"""Drive scim2-tester, print a summary, and decide the exit status."""
import json
import os
import sys
from collections import Counter, defaultdict

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

base_url, gate, out_dir = sys.argv[1], set(sys.argv[2].split()), sys.argv[3]

# Every exchange goes to http.log, numbered, so a failed check can be traced
# to the exact request and response.
http_log = open(os.path.join(out_dir, "http.log"), "w", encoding="utf-8")
counter = {"n": 0}


def log_request(request):
    counter["n"] += 1
    request.extensions["seq"] = counter["n"]


def log_response(response):
    response.read()
    request = response.request
    body = request.content.decode("utf-8", "replace") if request.content else ""
    http_log.write(
        f"#{request.extensions.get('seq')} {request.method} {request.url}\n"
        f"{body}\n--> {response.status_code} "
        f"{response.headers.get('content-type', '')}\n{response.text}\n\n"
    )


http = httpx2.Client(
    base_url=base_url,
    headers={"Authorization": f"Bearer {os.environ['SCIM_TOKEN']}"},
    timeout=10,
    trust_env=False,  # a local server: never through an HTTP proxy
    event_hooks={"request": [log_request], "response": [log_response]},
)
client = SyncSCIMClient(http)

# check_server discovers the server itself (ServiceProviderConfig, Schemas,
# ResourceTypes), then runs the CRUD and PATCH checks for every resource type
# the server advertises, and only those: an unadvertised type (Groups, until
# they exist) is never run.
results = check_server(client)
http_log.close()

FAIL = {Status.ERROR, Status.CRITICAL}
PASS = {Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE}


def area(result):
    if result.resource_type:
        return result.resource_type
    if "discovery" in result.tags:
        return "discovery"
    return "misc"


def outcome(status):
    if status in PASS:
        return "passed"
    if status in FAIL:
        return "failed"
    if status == Status.SKIPPED:
        return "skipped"
    return "deviation"  # a SHOULD not followed: reported, not a failure


table = defaultdict(Counter)
for r in results:
    table[area(r)][r.status.name] += 1

print()
print("scim2-tester 0.5.2 against", base_url)
statuses = [s.name for s in Status]
areas = sorted(table, key=lambda a: (a != "discovery", a == "misc", a))
width = max(len(a) for a in areas + ["area"])
print(f"{'area':<{width}}  " + "  ".join(f"{s:>10}" for s in statuses) + "       total")
for a in areas:
    row = table[a]
    print(
        f"{a:<{width}}  "
        + "  ".join(f"{row.get(s, 0):>10}" for s in statuses)
        + f"  {sum(row.values()):>10}"
    )

totals = Counter(outcome(r.status) for r in results)
print()
print(
    f"checks: {len(results)}  passed: {totals['passed']}  failed: {totals['failed']}"
    f"  deviations: {totals['deviation']}  skipped: {totals['skipped']}"
)

# One line per check and status; the PATCH checks run once per attribute.
print()
grouped = {}
for r in results:
    grouped.setdefault((area(r), r.title, r.status), []).append(r)
for (a, title, status), rs in grouped.items():
    o = outcome(status)
    mark = {"passed": "ok  ", "failed": "FAIL", "skipped": "skip", "deviation": "dev "}[o]
    times = f" x{len(rs)}" if len(rs) > 1 else ""
    reason = f" - {rs[0].reason}" if rs[0].reason and o != "passed" else ""
    print(f"  {mark} [{a}] {title}: {status.name}{times}{reason}")

gated = [r for r in results if r.status in FAIL and area(r) in ({"discovery"} | gate)]
other = [r for r in results if r.status in FAIL and r not in gated]

if gated or other:
    print()
    print("Failure details (requests and responses: " + os.path.join(out_dir, "http.log") + "):")
    for r in gated + other:
        print(f"--- [{area(r)}] {r.title}: {r.status.name}")
        print(f"    reason: {r.reason}")
        if r.data is not None:
            print(f"    data: {r.data!r}"[:2000])


def jsonable(r):
    data = r.data
    try:
        json.dumps(data)
    except TypeError:
        data = repr(data)
    return {
        "area": area(r), "title": r.title, "status": r.status.name,
        "reason": r.reason, "tags": sorted(r.tags), "data": data,
    }


with open(os.path.join(out_dir, "report.json"), "w", encoding="utf-8") as f:
    json.dump([jsonable(r) for r in results], f, indent=2)

print()
if gated:
    print(f"FAILED: {len(gated)} failing check(s) on discovery or {', '.join(sorted(gate))}")
    sys.exit(1)
if other:
    print(f"passed on discovery and {', '.join(sorted(gate))}; "
          f"{len(other)} failing check(s) elsewhere (not gated)")
else:
    print(f"passed: no failing check on discovery or {', '.join(sorted(gate))}")
sys.exit(0)
PY
STATUS=$?
set -e
if [ "$STATUS" -ne 0 ] && [ "$STATUS" -ne 1 ]; then
  echo "--- server log" >&2; tail -n 50 "$WORK/server.log" >&2
  die "the checker itself failed (exit $STATUS)"
fi
if [ -s "$WORK/server.log" ]; then
  echo "--- server log (warnings and errors)"; tail -n 30 "$WORK/server.log"
fi
echo "report: $OUT/report.json  http log: $OUT/http.log"
exit "$STATUS"
