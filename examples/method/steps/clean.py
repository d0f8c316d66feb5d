"""Clean one site's sightings: normalise species names, drop rows without a positive count."""

import csv
import sys

src = sys.argv[1]
site = src.rsplit("/", 1)[-1].removesuffix(".csv")
out = csv.writer(sys.stdout, lineterminator="\n")
out.writerow(["site", "date", "species", "count"])
with open(src, newline="") as f:
    for row in csv.DictReader(f):
        species = " ".join(row["species"].split()).capitalize()
        try:
            count = int(row["count"])
        except ValueError:
            continue
        if count > 0:
            out.writerow([site, row["date"], species, count])
