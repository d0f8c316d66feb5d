"""``python -m sharklib``.

``run`` takes a fast path that imports neither click nor rich, so capturing a
short script costs only a few milliseconds of start-up.
"""

from __future__ import annotations

import sys


def _main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "run":
        from sharklib.capture.main import run_main

        return run_main(sys.argv[2:])
    from sharklib.cli import main

    return main()


if __name__ == "__main__":
    sys.exit(_main())
