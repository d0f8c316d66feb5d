"""Check the report in a clean environment: every species has a known IUCN status."""

import sys

with open(sys.argv[1]) as f:
    rows = [line for line in f if line.startswith("| ") and "IUCN" not in line]
unknown = [r for r in rows if "| ? |" in r]
print(f"{len(rows)} species reported, {len(unknown)} without IUCN status")
sys.exit(1 if unknown or not rows else 0)
