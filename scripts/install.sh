#!/usr/bin/env bash
# Installs npm dependencies (reproducibly, from package-lock.json) and builds every package.
# Idempotent: skips `npm ci` when node_modules matches the lock file.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null || ! node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)'; then
  echo "coffre needs Node.js 20 or later" >&2
  exit 1
fi
stamp=node_modules/.coffre-lock-sha
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  npm ci --no-audit --no-fund
  echo "$want" > "$stamp"
fi
npm run build --silent
