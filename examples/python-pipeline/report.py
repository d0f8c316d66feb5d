"""Step 3: a short Markdown report of the most abundant species per habitat.

Usage: python report.py [DATA_DIR] [REPORT]   (defaults: data, report.md)
"""

import csv
import os
import sys
from collections import defaultdict


def main() -> None:
    data = sys.argv[1] if len(sys.argv) > 1 else "data"
    report = sys.argv[2] if len(sys.argv) > 2 else "report.md"
    best: dict[str, list[tuple[float, str, int]]] = defaultdict(list)
    with open(os.path.join(data, "abundance.csv"), newline="") as fh:
        for row in csv.DictReader(fh):
            best[row["habitat"]].append((float(row["mean"]), row["species"], int(row["total"])))
    lines = ["# Bird survey summary", ""]
    for hab in sorted(best):
        lines.append(f"## {hab}")
        for mean, sp, total in sorted(best[hab], reverse=True)[:3]:
            lines.append(f"- *{sp}*: mean {mean:.2f} per visit ({total} birds)")
        lines.append("")
    with open(report, "w") as fh:
        fh.write("\n".join(lines))
    print(f"wrote {report} ({len(best)} habitats)")


if __name__ == "__main__":
    main()
