#!/usr/bin/env bash
# Starts the local PostgreSQL 15 cluster (when present) and makes sure the
# test role and database exist, then prints the TEST_DATABASE_URL to use.
# Idempotent; needs root (or the postgres user) for the first set-up.
set -euo pipefail

URL="postgres://scimd:scimd@127.0.0.1:5432/scimd"

if [ -n "${TEST_DATABASE_URL:-}" ]; then
  echo "$TEST_DATABASE_URL"
  exit 0
fi

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  echo "PostgreSQL is not installed: install postgresql-15, or set TEST_DATABASE_URL to a server" >&2
  exit 1
fi

if ! pg_lsclusters -h 2>/dev/null | awk '$1=="15" && $2=="main" {found=1; if ($4=="online") up=1} END {exit !(found && up)}'; then
  pg_ctlcluster 15 main start >&2
fi

as_postgres() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    sudo -n -u postgres "$@"
  fi
}

for _ in $(seq 1 30); do
  if as_postgres psql -qAtc "select 1" >/dev/null 2>&1; then break; fi
  sleep 1
done

as_postgres psql -qAt >/dev/null <<'SQL'
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'scimd') THEN
    CREATE ROLE scimd LOGIN CREATEDB PASSWORD 'scimd';
  END IF;
END
$$;
SQL
if [ "$(as_postgres psql -qAtc "select 1 from pg_database where datname = 'scimd'")" != "1" ]; then
  as_postgres createdb -O scimd scimd >&2
fi

# Test databases (`scimd_test_<uuid>`) left behind by test processes that
# were killed: a test drops its own database when it ends, so one that no
# session is connected to is a leftover. (A `make test` running at the same
# moment could lose a database it created a millisecond earlier; don't run
# two at once on one cluster.)
as_postgres psql -qAt -c "SELECT datname FROM pg_database d
  WHERE datname LIKE 'scimd\_test\_%'
    AND NOT EXISTS (SELECT FROM pg_stat_activity a WHERE a.datname = d.datname)" |
  while read -r db; do
    as_postgres psql -qc "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || true
  done

echo "$URL"
