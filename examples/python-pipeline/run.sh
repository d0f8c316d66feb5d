#!/bin/sh
# The example pipeline, each step captured: sidecars appear beside every output.
set -e
cd "$(dirname "$0")"
python -m sharklib run simulate.py data
python -m sharklib run aggregate.py data
python -m sharklib run report.py data report.md
