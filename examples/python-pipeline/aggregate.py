"""Step 2: clean the observations and aggregate them per habitat and species.

Usage: python aggregate.py [DATA_DIR]   (default: data)
Reads DATA_DIR/observations.csv and DATA_DIR/sites.json; writes
DATA_DIR/abundance.csv through a temporary file moved into place with
os.replace, so a crash never leaves a half-written table.
"""

import csv
import json
import os
import sys
import tempfile
from collections import defaultdict


def main() -> None:
    data = sys.argv[1] if len(sys.argv) > 1 else "data"
    with open(os.path.join(data, "sites.json")) as fh:
        habitat = {s["site"]: s["habitat"] for s in json.load(fh)}
    totals: dict[tuple[str, str], list[int]] = defaultdict(list)
    dropped = 0
    with open(os.path.join(data, "observations.csv"), newline="") as fh:
        for row in csv.DictReader(fh):
            count = int(row["count"])
            if count < 0:
                dropped += 1
                continue
            totals[(habitat[row["site"]], row["species"])].append(count)
    fd, tmp = tempfile.mkstemp(dir=data, prefix=".abundance-", suffix=".csv")
    with os.fdopen(fd, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["habitat", "species", "visits", "total", "mean"])
        for (hab, sp), counts in sorted(totals.items()):
            w.writerow([hab, sp, len(counts), sum(counts), f"{sum(counts) / len(counts):.3f}"])
    os.replace(tmp, os.path.join(data, "abundance.csv"))
    print(f"aggregated {len(totals)} habitat/species pairs, dropped {dropped} bad records")


if __name__ == "__main__":
    main()
