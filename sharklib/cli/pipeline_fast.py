"""``python -m sharklib pipeline run|plan DOCUMENT [options]`` without importing click.

Re-checking an unchanged pipeline is meant to be nearly free, and at a
thousand stages the interpreter's start and imports are most of its cost;
click alone is ~20 ms. This path reads the few options of ``run`` and
``plan`` by hand and calls the same library function as the click command.
Anything it does not recognise (``--help``, a malformed or unknown option,
another subcommand) goes to the full click CLI, so messages and exit codes
are the same either way.
"""

from __future__ import annotations

import sys

EXECUTORS = ("local", "dask", "dask-local")
#: sub-command → option → the click parameter it sets to True (the click commands are
#: sharklib.cli.pipeline's; tests/cli/test_fast_paths.py checks both declare the same options)
FLAGS: dict[str, dict[str, str]] = {
    "run": {"--rerun": "rerun", "--dry-run": "dry_run", "-n": "dry_run"},
    "plan": {"--rerun": "rerun"},
}
#: sub-command → option → the click parameter it sets to the next argument
VALUED: dict[str, dict[str, str]] = {
    "run": {"-j": "jobs", "--jobs": "jobs", "--executor": "executor", "--scheduler": "scheduler"},
    "plan": {},
}
#: options left to click (rarely used; their checks are click's)
TO_CLICK: dict[str, dict[str, str]] = {
    "run": {"--report": "report", "--allow-outside": "allow_outside"},
    "plan": {"--allow-outside": "allow_outside"},
}


def _value(dest: str, value: str | None) -> object | None:
    """The option's value as click would convert it, or None where click must report it."""
    if value is None:
        return None
    if dest == "jobs":
        return int(value) if value.isdigit() and int(value) >= 1 else None
    if dest == "executor":
        return value if value in EXECUTORS else None
    return None if value.startswith("-") else value


def parse(args: list[str]) -> dict[str, object] | None:
    """The keyword arguments of :func:`run_pipeline` plus ``document``, or ``None`` for click."""
    if not args or args[0] not in FLAGS:
        return None
    sub = args[0]
    opts: dict[str, object] = {"jobs": None, "dry_run": sub == "plan", "executor": "local",
                               "scheduler": None, "rerun": False}
    document: str | None = None
    rest = args[1:]
    i = 0
    while i < len(rest):
        a = rest[i]
        if a in FLAGS[sub]:
            opts[FLAGS[sub][a]] = True
        elif a in VALUED[sub]:
            dest = VALUED[sub][a]
            value = _value(dest, rest[i + 1] if i + 1 < len(rest) else None)
            if value is None:
                return None
            opts[dest] = value
            i += 1
        elif a.startswith("-") or document is not None:
            return None
        else:
            document = a
        i += 1
    if document is None:
        return None
    opts["document"] = document
    return opts


def pipeline_main(args: list[str]) -> int:
    opts = parse(args)
    if opts is None:
        from sharklib.cli import main as cli_main

        return cli_main(["pipeline", *args])
    from sharklib.errors import SharkError
    from sharklib.pipeline import bulk
    from sharklib.pipeline.run import run_pipeline

    bulk.freeze_after = True  # this process ends with the pipeline: see bulk.freeze_after
    document = str(opts.pop("document"))
    try:
        report = run_pipeline(document, **opts)  # type: ignore[arg-type]
    except SharkError as exc:
        sys.stderr.write(f"sharklib: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("Aborted.\n")
        return 130
    return report.exit_code
