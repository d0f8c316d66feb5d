"""``python -m sharklib``.

``run``, ``env``, ``trace`` and ``pipeline run|plan`` take fast paths that do not import
click (nor rich before the user's command starts), so capturing or tracing a
command, or re-checking an unchanged pipeline, costs little start-up. The
``sharklib`` console script enters here too.
"""

from __future__ import annotations

import sys


def _main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "run":
        from sharklib.capture.main import run_main

        return run_main(sys.argv[2:])
    if len(sys.argv) > 1 and sys.argv[1] == "trace":
        from sharklib.cli.trace_fast import trace_main

        return trace_main(sys.argv[2:])
    if len(sys.argv) > 1 and sys.argv[1] == "env":
        from sharklib.cli.env_fast import env_main

        return env_main(sys.argv[2:])
    if len(sys.argv) > 2 and sys.argv[1] == "pipeline":
        from sharklib.cli.pipeline_fast import pipeline_main

        return pipeline_main(sys.argv[2:])
    from sharklib.cli import main

    return main()


if __name__ == "__main__":
    sys.exit(_main())
