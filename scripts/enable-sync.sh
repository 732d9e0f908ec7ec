#!/usr/bin/env bash
# For local trials, benchmarks and the conformance run only: configures
# SAML sign-in with a throwaway self-signed certificate and enables User
# Synchronization, on the database the environment names
# (SCIMD__DATABASE__URL, or --config via SCIMD_ARGS).
# A real deployment enters its identity provider's SAML settings instead
# (`scimd saml set --metadata FILE`, or the admin API) and enables sync
# after reading the cautions.
#
#   scripts/enable-sync.sh [SCIMD_BIN]
set -euo pipefail

BIN="${1:-target/release/scimd}"
[ -x "$BIN" ] || { echo "enable-sync: $BIN not found" >&2; exit 2; }
command -v openssl >/dev/null || { echo "enable-sync: openssl is required" >&2; exit 2; }

dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=scimd-test-idp" \
  -keyout "$dir/key.pem" -out "$dir/cert.pem" >/dev/null 2>&1
# shellcheck disable=SC2086
"$BIN" ${SCIMD_ARGS:-} saml set --entity-id "https://idp.invalid/scimd-test" \
  --sso-url "https://idp.invalid/scimd-test/sso" --certificate "$dir/cert.pem" >/dev/null
# shellcheck disable=SC2086
"$BIN" ${SCIMD_ARGS:-} sync enable --accept-cautions >/dev/null
