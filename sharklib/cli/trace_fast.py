"""``python -m sharklib trace ...`` without click or rich.

(The option tables below are the click command's, :mod:`sharklib.cli.trace`; a test checks it.)

The tracer must be attached before the command runs, so everything imported
first delays the user's command. This path reads the few ``trace`` options by
hand, starts loading the BPF programs at once (the kernel's verifier works in a
thread while the rest of sharklib is imported), runs the command, and prints its
report with plain writes (no rich). Anything it does not recognise (``--help``, a
misspelt option, no command) goes to the full click CLI, so messages and exit
codes are the same either way.
"""

from __future__ import annotations

import os
import sys

from sharklib.config import ENV_QUIET

BACKENDS = ("auto", "ebpf", "ptrace")
#: option → the click parameter it sets (to True); the click command is sharklib.cli.trace,
#: and tests/cli/test_fast_paths.py checks that these tables and it declare the same options
FLAGS = {"--proxy": "use_proxy", "--no-python-capture": "no_python_capture",
         "-q": "quiet", "--quiet": "quiet"}
#: option → (the click parameter it sets, the values it takes)
CHOICES = {"--backend": ("backend", BACKENDS)}
#: options left to click: nothing is traced, so there is no start-up to save
TO_CLICK = {"--explain": "explain"}


def parse(args: list[str]) -> dict[str, object] | None:
    """The click command's parameters (``cmd`` a list), or ``None`` to let click handle ``args``."""
    got: dict[str, object] = {"backend": "auto", "use_proxy": False, "no_python_capture": False,
                              "quiet": False}
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            i += 1
            break
        if not a.startswith("-"):
            break
        name, eq, inline = a.partition("=")
        if a in FLAGS:
            got[FLAGS[a]] = True
        elif name in CHOICES:
            dest, values = CHOICES[name]
            value = inline if eq else (args[i + 1] if i + 1 < len(args) else None)
            if value not in values:
                return None
            got[dest] = value
            i += 0 if eq else 1
        else:
            return None
        i += 1
    cmd = args[i:]
    if not cmd:
        return None
    got["cmd"] = cmd
    return got


def trace_main(args: list[str]) -> int:
    parsed = parse(args)
    if parsed is None:
        from sharklib.cli import main as cli_main

        return cli_main(["trace", *args])
    backend, proxy, cmd = str(parsed["backend"]), bool(parsed["use_proxy"]), parsed["cmd"]
    assert isinstance(cmd, list)
    from sharklib.trace import ebpf

    preload = None
    if backend in ("auto", "ebpf") and not proxy and ebpf.unavailable_reason() is None:
        preload = ebpf.Preload()
    from sharklib.errors import SharkError
    from sharklib.runner.step import trace_step

    try:
        return trace_step(cmd, backend, use_proxy=proxy,  # in BACKENDS
                          python_capture=not parsed["no_python_capture"], preload=preload,
                          quiet=bool(parsed["quiet"])
                          or os.environ.get(ENV_QUIET, "") not in ("", "0"))
    except SharkError as exc:
        sys.stderr.write(f"sharklib: error: {exc}\n")
        return 2
