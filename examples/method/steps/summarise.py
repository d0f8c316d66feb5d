"""Summarise one cleaned site: individuals and sighting days per species."""

import csv
import json
import sys

per_species: dict[str, dict[str, int]] = {}
site = ""
with open(sys.argv[1], newline="") as f:
    for row in csv.DictReader(f):
        site = row["site"]
        s = per_species.setdefault(row["species"], {"individuals": 0, "days": 0})
        s["individuals"] += int(row["count"])
        s["days"] += 1
json.dump({"site": site, "species": per_species}, sys.stdout, indent=1, sort_keys=True)
print()
