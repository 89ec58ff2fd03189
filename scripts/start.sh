#!/usr/bin/env bash
# Quick start: installs, builds and starts coffre-server on its embedded defaults
# (SQLite + local disk under one data directory). Usage: scripts/start.sh [DATA_DIR] [HOST:PORT]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
DATA_DIR=${1:-${COFFRE_DATA_DIR:-$PWD/.data}}
LISTEN=${2:-${COFFRE_LISTEN:-127.0.0.1:8443}}
exec ./bin/coffre-server start --data-dir "$DATA_DIR" --listen "$LISTEN"
