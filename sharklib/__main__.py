"""``python -m sharklib``.

``run`` and ``trace`` take fast paths that import neither click nor rich before
the user's command starts, so capturing or tracing it costs little start-up.
"""

from __future__ import annotations

import sys


def _main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "run":
        from sharklib.capture.main import run_main

        return run_main(sys.argv[2:])
    if len(sys.argv) > 1 and sys.argv[1] == "trace":
        from sharklib.trace.main import trace_main

        return trace_main(sys.argv[2:])
    from sharklib.cli import main

    return main()


if __name__ == "__main__":
    sys.exit(_main())
