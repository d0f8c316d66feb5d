"""Gather every site summary into one regional table, with each species' IUCN status."""

import argparse
import csv
import json
import os

ap = argparse.ArgumentParser()
ap.add_argument("summaries")
ap.add_argument("status")
ap.add_argument("--min-count", type=int, default=1)
args = ap.parse_args()

with open(args.status, newline="") as f:
    status = {row["species"]: row["status"] for row in csv.DictReader(f)}
totals: dict[str, dict[str, int]] = {}
for name in sorted(os.listdir(args.summaries)):
    if not name.endswith(".json"):
        continue  # sidecars (.intoto.jsonl) live beside the summaries
    with open(os.path.join(args.summaries, name)) as f:
        summary = json.load(f)
    for species, s in summary["species"].items():
        t = totals.setdefault(species, {"individuals": 0, "sites": 0})
        t["individuals"] += s["individuals"]
        t["sites"] += 1
print("| species | IUCN | individuals | sites |")
print("|---|---|---:|---:|")
for species, t in sorted(totals.items(), key=lambda kv: -kv[1]["individuals"]):
    if t["individuals"] >= args.min_count:
        print(f"| {species} | {status.get(species, '?')} | {t['individuals']} | {t['sites']} |")
