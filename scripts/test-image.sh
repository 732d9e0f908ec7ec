#!/usr/bin/env bash
# The container image test (run by `make test`): builds the image around
# BINARY (default target/debug/scimd) with scripts/build-image.sh, runs it
# on SQLite with a named volume and checks /healthz, the files' owner and
# modes in the volume, and a clean stop; then, when TEST_DATABASE_URL names
# a PostgreSQL server, runs it on a throwaway database there.
#
# podman is installed with apt where it is missing and this runs as root.
# The test is skipped, saying why, only where podman is missing or cannot
# run containers on this machine (a sandbox without the rights to set
# rlimits or with cgroups crun refuses: then runc is tried first).
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${1:-target/debug/scimd}
skip() { echo "test-image: SKIPPED: $*"; exit 0; }
fail() { echo "test-image: FAILED: $*" >&2; exit 1; }

if ! command -v podman >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc >/dev/null 2>&1; } || true
fi
command -v podman >/dev/null || skip "podman is not installed (apt-get install podman)"

tag=localhost/scimd-test:$$
name=scimd-test-$$
volume=scimd-test-$$
pgdb=""
cleanup() {
    podman rm -f -v "$name" >/dev/null 2>&1 || true
    podman volume rm -f "$volume" >/dev/null 2>&1 || true
    podman rmi -f "$tag" >/dev/null 2>&1 || true
    if [ -n "$pgdb" ]; then psql -q "$TEST_DATABASE_URL" -c "DROP DATABASE IF EXISTS $pgdb WITH (FORCE)" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

scripts/build-image.sh "$bin" "$tag" >/dev/null || fail "podman build"

# Can this machine run containers at all? Where the default runtime (crun)
# cannot, runc may; rlimits above the current hard limits are refused in
# some sandboxes, so ask for what is allowed.
run_opts=()
probe() { podman "$@" run --rm "${run_opts[@]}" "$tag" --version 2>&1; }
if ! out=$(probe); then
    runtime_problem='rlimit|cgroup|OCI permission denied|OCI runtime error'
    grep -Eq "$runtime_problem" <<<"$out" || fail "the image does not run: $out"
    run_opts=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=4096:4096)
    if command -v runc >/dev/null; then run_opts=(--runtime runc "${run_opts[@]}"); fi
    out2=$(probe) || {
        grep -Eq "$runtime_problem" <<<"$out2" || fail "the image does not run: $out2"
        skip "podman cannot run containers here: $out"
    }
fi
grep -q '^scimd ' <<<"$(probe)" || fail "scimd --version in the image"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_healthy() {
    for _ in $(seq 1 300); do
        if curl -fsS "http://127.0.0.1:$1/$2" 2>/dev/null | grep -q "$3"; then return 0; fi
        [ "$(podman inspect "$name" --format '{{.State.Running}}')" = true ] ||
            { podman logs "$name" >&2; fail "the container stopped"; }
        sleep 0.1
    done
    podman logs "$name" >&2
    fail "/$2 did not answer"
}
stop_cleanly() {
    podman stop --time 20 "$name" >/dev/null
    code=$(podman inspect "$name" --format '{{.State.ExitCode}}')
    [ "$code" = 0 ] || { podman logs "$name" >&2; fail "scimd exited with $code on SIGTERM"; }
    podman rm -v "$name" >/dev/null
}

# SQLite in a named volume, published on a local port.
port=$(free_port)
podman volume create "$volume" >/dev/null
podman run -d --name "$name" "${run_opts[@]}" -p "127.0.0.1:$port:8080" \
    -v "$volume:/var/lib/scimd" "$tag" >/dev/null
wait_healthy "$port" healthz '"ok"'
wait_healthy "$port" readyz ready
data=$(podman volume inspect "$volume" --format '{{.Mountpoint}}')
[ "$(stat -c '%a %u' "$data")" = "700 10001" ] || fail "the data volume is $(stat -c '%a %u' "$data")"
for f in scimd.db scimd.db-wal scimd.db-shm; do
    [ "$(stat -c '%a %u' "$data/$f")" = "600 10001" ] || fail "$f in the volume is $(stat -c '%a %u' "$data/$f")"
done
stop_cleanly

# PostgreSQL on the host, from the container (host network: the database
# listens on 127.0.0.1).
if [ -n "${TEST_DATABASE_URL:-}" ] && command -v psql >/dev/null; then
    pgdb=scimd_image_test_$$
    psql -q "$TEST_DATABASE_URL" -c "CREATE DATABASE $pgdb" >/dev/null
    pgurl=$(sed -E "s#^(postgres(ql)?://[^/]+)/[^?]*#\1/$pgdb#" <<<"$TEST_DATABASE_URL")
    port=$(free_port)
    podman run -d --name "$name" "${run_opts[@]}" --network host \
        -e SCIMD__DATABASE__URL="$pgurl" -e SCIMD__SERVER__BIND="127.0.0.1:$port" "$tag" >/dev/null
    wait_healthy "$port" readyz ready
    stop_cleanly
    pg="and on PostgreSQL"
else
    pg="(PostgreSQL not tried: TEST_DATABASE_URL is unset)"
fi
echo "test-image: ok (built FROM scratch, served /healthz on SQLite in a volume $pg)"
