# Shared by the benchmark scripts (source it; it defines functions only):
# starting a fresh scimd on SQLite or on a fresh PostgreSQL database with
# User Synchronization enabled and a token, and tearing it down.
#
# The sourcing script sets ROOT, BIN, WORK and a `die` function first.
# After `start_scimd BACKEND NAME`: SERVER_PID, BASE (http://127.0.0.1:PORT)
# and TOKEN are set; scimd logs to $WORK/NAME-server-BACKEND.log.

SERVER_PID=""
PG_ADMIN_URL=""
PG_DB=""

log() { printf '==> %s\n' "$*" >&2; }

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
    local err=""
    for _ in 1 2 3 4 5; do
      if err="$(psql "$PG_ADMIN_URL" -qAtc "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" 2>&1)"; then
        err=""; break
      fi
      sleep 1
    done
    [ -z "$err" ] || log "could not drop database $PG_DB: $err"
    PG_DB=""
  fi
}

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

start_scimd() { # sqlite|postgres NAME
  local backend="$1" name="$2" url
  case "$backend" in
    sqlite) url="sqlite://$WORK/$name.db" ;;
    postgres)
      command -v psql >/dev/null || die "psql is required for the PostgreSQL run"
      PG_ADMIN_URL="${BENCH_PG_URL:-$("$ROOT/scripts/test-postgres.sh")}"
      PG_DB="scimd_${name//-/_}_$$"
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
  BASE="http://127.0.0.1:$port"

  "$BIN" migrate >"$WORK/migrate-$backend.log" 2>&1 \
    || { cat "$WORK/migrate-$backend.log" >&2; die "scimd migrate failed on $backend"; }
  TOKEN="$("$BIN" token create --name bench 2>/dev/null | grep -E '^scimd_' | head -n1 || true)"
  [ -n "$TOKEN" ] || die "scimd token create printed no secret"
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

  SERVER_LOG="$WORK/$name-server-$backend.log"
  "$BIN" serve >"$SERVER_LOG" 2>&1 &
  SERVER_PID=$!
  wait_ready "$BASE/readyz" || { cat "$SERVER_LOG" >&2; die "scimd did not start on $backend"; }
  log "scimd on $backend ($BASE, pid $SERVER_PID)"
}

# Prints the server log's errors, if any (a finding, not a failure).
report_server_errors() { # backend
  if grep -qiE 'error|panick' "$SERVER_LOG"; then
    log "server log on $1 has errors:"
    grep -iE 'error|panick' "$SERVER_LOG" | tail -n 20 >&2
  fi
}
