"""Benchmark workload: a small data-science script (pandas + numpy) over a few hundred files.

Usage: python capture_ds_script.py DATA_DIR OUT_DIR
Reads every DATA_DIR/*.csv, computes per-file statistics and a rolling
smooth with numpy, writes one CSV per input and a summary table. Also used
unchanged for noWorkflow and recipy.
"""

import glob
import os
import sys

import numpy as np
import pandas as pd


def main() -> None:
    data_dir, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    rows = []
    for path in sorted(glob.glob(os.path.join(data_dir, "*.csv"))):
        df = pd.read_csv(path)
        values = df["value"].to_numpy()
        kernel = np.hanning(31)
        kernel /= kernel.sum()
        df["smooth"] = np.convolve(values, kernel, mode="same")
        fft = np.abs(np.fft.rfft(values - values.mean()))
        df["group"] = df["station"] % 7
        stats = df.groupby("group")["smooth"].agg(["mean", "std", "max"])
        name = os.path.basename(path)
        stats.to_csv(os.path.join(out_dir, name))
        rows.append({"file": name, "mean": float(values.mean()), "peak": int(fft.argmax()),
                     "q95": float(np.quantile(values, 0.95))})
    pd.DataFrame(rows).to_csv(os.path.join(out_dir, "summary.csv"), index=False)
    print(f"processed {len(rows)} files")


if __name__ == "__main__":
    main()
