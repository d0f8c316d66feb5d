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


def parse(args: list[str]) -> dict[str, object] | None:
    """The keyword arguments of :func:`run_pipeline` plus ``document``, or ``None`` for click."""
    if not args or args[0] not in ("run", "plan"):
        return None
    plan = args[0] == "plan"
    opts: dict[str, object] = {"jobs": None, "dry_run": plan, "executor": "local",
                               "scheduler": None, "rerun": False}
    document: str | None = None
    rest = args[1:]
    i = 0
    while i < len(rest):
        a = rest[i]
        value = rest[i + 1] if i + 1 < len(rest) else None
        if a == "--rerun":
            opts["rerun"] = True
        elif a in ("--dry-run", "-n") and not plan:
            opts["dry_run"] = True
        elif a in ("-j", "--jobs") and not plan and value is not None and value.isdigit() \
                and int(value) >= 1:
            opts["jobs"] = int(value)
            i += 1
        elif a == "--executor" and not plan and value in EXECUTORS:
            opts["executor"] = value
            i += 1
        elif a == "--scheduler" and not plan and value is not None and not value.startswith("-"):
            opts["scheduler"] = value
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
