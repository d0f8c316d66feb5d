"""``python -m sharklib.pipeline.fetch SOURCE DEST [--sha256 HEX]``: one import, as a stage.

Running the fetch as its own captured process makes the download part of the
lineage (URL, digest, size, headers) and lets the runner reuse it like any
other stage. Failures print one line on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import os
import sys

from sharklib.errors import SharkError
from sharklib.pipeline.imports import fetch


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="sharklib-fetch")
    ap.add_argument("source")
    ap.add_argument("dest")
    ap.add_argument("--sha256")
    args = ap.parse_args(argv)
    try:
        # the stage runs in the document's directory: nothing is written outside it
        digest = fetch(args.source, args.dest, args.sha256, root=os.getcwd())
    except SharkError as exc:
        print(f"sharklib: error: {exc}", file=sys.stderr)
        return 1
    print(f"{digest}  {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
