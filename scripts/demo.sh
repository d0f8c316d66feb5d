#!/usr/bin/env bash
# Set up .venv and run the bundled example pipelines under capture (see README).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bash scripts/setup.sh
exec .venv/bin/sharklib demo "$@"
