"""Write N deterministic CSV inputs for the capture benchmark: python capture_make_data.py DIR N ROWS."""

import os
import sys

import numpy as np


def main() -> None:
    out, n, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(7)
    for i in range(n):
        station = rng.integers(0, 50, rows)
        value = np.cumsum(rng.normal(size=rows)) + np.sin(np.arange(rows) / 25.0) * 3
        with open(os.path.join(out, f"series_{i:04d}.csv"), "w") as fh:
            fh.write("station,value\n")
            fh.writelines(f"{s},{v:.5f}\n" for s, v in zip(station, value, strict=True))


if __name__ == "__main__":
    main()
