#!/usr/bin/env bash
# Run one precis job through spark-submit:
#   ./spark-submit.sh <job> [--config FILE] [--set dotted.key=value ...] [--run-date YYYY-MM-DD] [--env ENV]
# Works from any shell once `make setup` has built .venv; nothing needs activating.
# PRECIS_PYTHON names another interpreter (e.g. on a cluster edge node with its own env).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PRECIS_PYTHON:-$here/.venv/bin/python}"
if [ ! -x "$python" ]; then
  echo "spark-submit.sh: $python not found; run 'make setup' first (or set PRECIS_PYTHON)" >&2
  exit 2
fi
export PYSPARK_PYTHON="${PYSPARK_PYTHON:-$python}"
exec "$python" -m precis.submit "$@"
