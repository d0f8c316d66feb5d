"""``sharklib run`` with the end-of-run work taken out: what capture costs before hashing and signing.

Usage: python capture_floor.py [sharklib run options] SCRIPT ARGS...

A measurement tool for ``bench_capture.py``, not a mode of the product: it
replaces :func:`sharklib.capture.finish.finish` (digests, the Run, statements,
signatures, sidecars) with a function that records nothing, so the difference
to a full captured run is exactly what that work costs on the script's wall time.
"""

import sys

from sharklib.capture import finish


def _nothing(rec, status):  # type: ignore[no-untyped-def]
    rec.active = False
    return finish.Finished(run=None)


if __name__ == "__main__":
    finish.finish = _nothing
    from sharklib.capture.main import run_main

    sys.exit(run_main(sys.argv[1:]))
