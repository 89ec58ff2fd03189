#!/usr/bin/env bash
# Installs what the tests need, builds, lints, and runs every test (unit, integration
# with real processes over HTTPS, end to end). Exit code is non-zero on any failure.
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
npm run lint --silent
shopt -s nullglob
files=(packages/core/dist/test/*.test.js packages/server/dist/test/*.test.js packages/agent/dist/test/*.test.js e2e/dist/test/*.test.js)
if [ ${#files[@]} -eq 0 ]; then
  echo "no test files found: did the build run?" >&2
  exit 1
fi
# node --test exits 0 when it runs nothing: count what ran and fail on zero.
out=$(mktemp)
trap 'rm -f "$out"' EXIT
set +e
node --test --test-concurrency="${COFFRE_TEST_CONCURRENCY:-2}" "${files[@]}" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
set -e
pass=$(grep -E '^# pass [0-9]+' "$out" | tail -1 | awk '{print $3}')
fail=$(grep -E '^# fail [0-9]+' "$out" | tail -1 | awk '{print $3}')
if [ "${pass:-0}" -eq 0 ]; then
  echo "no test ran" >&2
  exit 1
fi
echo "${pass:-0} passed, ${fail:-0} failed"
exit "$rc"
