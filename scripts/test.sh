#!/usr/bin/env bash
# Installs what the tests need, builds, lints, and runs every test (unit, integration
# with real processes over HTTPS, end to end) twice: on the embedded backends (SQLite +
# local disk), then the server and end-to-end suites on PostgreSQL + S3 (real services,
# started here from Debian packages: scripts/services/). Exit code is non-zero on any failure.
#   COFFRE_TEST_BACKEND=embedded|postgres-s3 scripts/test.sh   # one pass only, on that backend
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# Tools the tests call: GNU touch (ns times), mkfifo, runuser/setpriv (unprivileged runs).
missing=()
for tool in touch mkfifo runuser setpriv; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq && apt-get -o DPkg::Lock::Timeout=600 install -y -qq coreutils util-linux >/dev/null
fi
# A real browser for the console's end-to-end tests (Debian's Chromium, driven by playwright-core).
if ! command -v chromium >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq && apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium >/dev/null
fi
# Real PostgreSQL 15 and S3 (OpenStack Swift's s3api) on loopback; idempotent, left running.
export COFFRE_TEST_PG_URL=${COFFRE_TEST_PG_URL:-postgres://postgres:coffre-test@127.0.0.1:5433/postgres}
export COFFRE_TEST_S3_ENDPOINT=${COFFRE_TEST_S3_ENDPOINT:-http://127.0.0.1:8080}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test:tester} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-testing} AWS_REGION=${AWS_REGION:-us-east-1}
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if ! listening 5433; then
  PGROOT=${COFFRE_TEST_PGROOT:-/tmp/coffre-pg} PGPORT=5433 PGPASS=coffre-test bash scripts/services/start-postgres.sh >/dev/null
fi
if ! listening 8080; then
  S3DIR=${COFFRE_TEST_S3DIR:-/tmp/coffre-s3} S3_PORT=8080 bash scripts/services/start-swift-s3.sh >/dev/null
fi
# Databases left by earlier runs (each test server makes its own).
PGPASSWORD=coffre-test psql -h 127.0.0.1 -p 5433 -U postgres -Atc \
  "select 'drop database if exists ' || quote_ident(datname) || ' with (force);' from pg_database where datname like 'coffre\_%'" \
  | PGPASSWORD=coffre-test psql -q -h 127.0.0.1 -p 5433 -U postgres >/dev/null
npm run lint --silent

shopt -s nullglob
out=$(mktemp)
trap 'rm -f "$out"' EXIT
total_pass=0
total_fail=0
status=0
# One pass: node --test over the given files with COFFRE_TEST_BACKEND=$1. node --test exits 0
# when it runs nothing: count what ran and fail on zero.
run_pass() {
  local backend=$1
  shift
  if [ $# -eq 0 ]; then
    echo "no test files found: did the build run?" >&2
    exit 1
  fi
  echo "=== tests on the $backend backends ==="
  set +e
  COFFRE_TEST_BACKEND=$backend node --test --test-concurrency="${COFFRE_TEST_CONCURRENCY:-2}" "$@" 2>&1 | tee "$out"
  local rc=${PIPESTATUS[0]}
  set -e
  local pass fail
  pass=$(grep -E '^# pass [0-9]+' "$out" | tail -1 | awk '{print $3}')
  fail=$(grep -E '^# fail [0-9]+' "$out" | tail -1 | awk '{print $3}')
  if [ "${pass:-0}" -eq 0 ]; then
    echo "no test ran on the $backend backends" >&2
    exit 1
  fi
  echo "$backend: ${pass:-0} passed, ${fail:-0} failed"
  total_pass=$((total_pass + ${pass:-0}))
  total_fail=$((total_fail + ${fail:-0}))
  if [ "$rc" -ne 0 ]; then status=$rc; fi
}

all=(packages/core/dist/test/*.test.js packages/server/dist/test/*.test.js packages/agent/dist/test/*.test.js e2e/dist/test/*.test.js)
# The second pass skips the files that do not depend on the switch (they test one store or
# engine, or both at once, whatever it says): they already ran in the first.
fixed='/(store|s3-store|schema-parity|query-plans|structure|units|auth-primitives|audit-chain|webauthn|migrate-storage|scale-out-instances|scale-out-faults)\.test\.js$'
both=()
for f in packages/server/dist/test/*.test.js e2e/dist/test/*.test.js; do [[ $f =~ $fixed ]] || both+=("$f"); done
case "${COFFRE_TEST_BACKEND:-}" in
  '') run_pass embedded "${all[@]}"; run_pass postgres-s3 "${both[@]}" ;;
  embedded) run_pass embedded "${all[@]}" ;;
  postgres-s3) run_pass postgres-s3 "${both[@]}" ;;
  *) echo "COFFRE_TEST_BACKEND must be embedded or postgres-s3" >&2; exit 2 ;;
esac
echo "${total_pass} passed, ${total_fail} failed"
exit "$status"
