#!/usr/bin/env bash
# coffre benchmark: coffre vs restic vs borg. See bench/README.md.
#   bash bench/run.sh                                   # full run (~1 GiB + 100k small files)
#   BENCH_SCALE=0.05 BENCH_TOOLS=restic,borg bash bench/run.sh   # quick smoke run
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
export BENCH_DIR="${BENCH_DIR:-$HERE/work}"
export BENCH_TOOLS="${BENCH_TOOLS:-coffre,restic,borg}"
export BENCH_SCALE="${BENCH_SCALE:-1}"

wants() { [[ ",$BENCH_TOOLS," == *",$1,"* ]]; }

# ---- comparison tools from Debian packages (installed only when missing)
pkgs=()
[[ -x /usr/bin/time ]] || pkgs+=(time)
if wants restic && ! command -v restic >/dev/null; then pkgs+=(restic); fi
if wants borg && ! command -v borg >/dev/null; then pkgs+=(borgbackup); fi
if ((${#pkgs[@]})); then
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    echo "bench: missing ${pkgs[*]} and cannot apt-get install them (need root on Debian/Ubuntu)" >&2
    exit 1
  fi
  echo "bench: installing ${pkgs[*]} from Debian packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi

command -v node >/dev/null || { echo "bench: node not found" >&2; exit 1; }
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
  { echo "bench: Node >= 20 required (found $(node --version))" >&2; exit 1; }

if wants coffre && { [[ ! -x "${BENCH_COFFRE_BIN:-$ROOT/bin/coffre}" ]] || [[ ! -x "${BENCH_COFFRE_SERVER_BIN:-$ROOT/bin/coffre-server}" ]]; }; then
  echo "bench: NOTE: ./bin/coffre or ./bin/coffre-server is missing — build coffre first (npm run build);" \
    "coffre will be skipped" >&2
fi

mkdir -p "$BENCH_DIR"
BENCH_DIR="$(cd "$BENCH_DIR" && pwd)"   # absolute, before changing directory
export BENCH_DIR
cd "$ROOT"
exec node "$HERE/bench.mjs"
