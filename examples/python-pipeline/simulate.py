"""Step 1: simulate species observations at survey sites (deterministic).

Usage: python simulate.py [OUT_DIR]   (default: data)
Writes OUT_DIR/observations.csv and OUT_DIR/sites.json.
"""

import csv
import json
import os
import random
import sys

SPECIES = ["Parus major", "Erithacus rubecula", "Turdus merula", "Fringilla coelebs",
           "Sitta europaea", "Dendrocopos major", "Certhia familiaris", "Regulus regulus"]
HABITATS = ["forest", "hedgerow", "meadow", "wetland"]


def main() -> None:
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "data"
    os.makedirs(out_dir, exist_ok=True)
    rng = random.Random(42)
    sites = [{"site": f"S{i:02d}", "habitat": HABITATS[i % len(HABITATS)],
              "lat": round(50 + rng.random(), 4), "lon": round(4 + rng.random(), 4)}
             for i in range(24)]
    with open(os.path.join(out_dir, "sites.json"), "w") as fh:
        json.dump(sites, fh, indent=1)
    with open(os.path.join(out_dir, "observations.csv"), "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["site", "visit", "species", "count"])
        for s in sites:
            for visit in range(1, 6):
                for sp in SPECIES:
                    if rng.random() < 0.55:
                        count = rng.randint(0, 12) if rng.random() > 0.05 else -1  # -1: bad record
                        w.writerow([s["site"], visit, sp, count])
    print(f"simulated {len(sites)} sites into {out_dir}/")


if __name__ == "__main__":
    main()
