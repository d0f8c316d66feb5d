"""``python -m sharklib trace ...`` without click or rich before the command starts.

The tracer must be attached before the command runs, so everything imported
first delays the user's command. This path reads the few ``trace`` options by
hand, starts loading the BPF programs at once (the kernel's verifier works in a
thread while the rest of sharklib is imported), runs the command, and only then
imports rich for the report. Anything it does not recognise (``--help``, a
misspelt option, no command) goes to the full click CLI, so messages and exit
codes are the same either way.
"""

from __future__ import annotations

import os
import sys

BACKENDS = ("auto", "ebpf", "ptrace")


def parse(args: list[str]) -> tuple[str, bool, bool, list[str]] | None:
    """(backend, proxy, python capture, command), or ``None`` to let click handle ``args``."""
    backend, proxy, python_capture = "auto", False, True
    if "--explain" in args[:args.index("--") if "--" in args else len(args)]:
        return None  # nothing is traced: no start-up to save
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            i += 1
            break
        if not a.startswith("-"):
            break
        if a == "--proxy":
            proxy = True
        elif a == "--no-python-capture":
            python_capture = False
        elif a == "--backend" and i + 1 < len(args) and args[i + 1] in BACKENDS:
            backend = args[i + 1]
            i += 1
        elif a.startswith("--backend=") and a.split("=", 1)[1] in BACKENDS:
            backend = a.split("=", 1)[1]
        else:
            return None
        i += 1
    cmd = args[i:]
    return (backend, proxy, python_capture, cmd) if cmd else None


def trace_main(args: list[str]) -> int:
    parsed = parse(args)
    if parsed is None:
        from sharklib.cli import main as cli_main

        return cli_main(["trace", *args])
    backend, proxy, python_capture, cmd = parsed
    from sharklib.trace import ebpf

    preload = None
    if backend in ("auto", "ebpf") and not proxy and ebpf.unavailable_reason() is None:
        preload = ebpf.Preload()
    from sharklib.errors import SharkError
    from sharklib.runner.step import trace_step

    try:
        return trace_step(cmd, backend, use_proxy=proxy, python_capture=python_capture,
                          preload=preload,
                          quiet=os.environ.get("SHARKLIB_QUIET", "") not in ("", "0"))
    except SharkError as exc:
        sys.stderr.write(f"sharklib: error: {exc}\n")
        return 2
