"""``sharklib trace [--backend ebpf|ptrace|auto] [--proxy] -- CMD ARGS...``"""

from __future__ import annotations

import os

import click


@click.command("trace", context_settings={"ignore_unknown_options": True,
                                          "allow_interspersed_args": False})
@click.option("--backend", type=click.Choice(["auto", "ebpf", "ptrace"]), default="auto",
              show_default=True, help="eBPF when permitted (root or CAP_BPF+CAP_PERFMON), else strace.")
@click.option("--proxy", "use_proxy", is_flag=True,
              help="Route HTTP(S) through a loopback proxy that records downloads.")
@click.option("--no-python-capture", is_flag=True,
              help="Do not put the Python capture bootstrap on the tree's PYTHONPATH.")
@click.option("-q", "--quiet", is_flag=True, help="No summary line (errors are still printed).")
@click.option("--explain", is_flag=True,
              help="Run nothing: say whether CMD would be reused, and if not, why.")
@click.argument("cmd", nargs=-1, required=True, type=click.UNPROCESSED)
def command(backend: str, use_proxy: bool, no_python_capture: bool, quiet: bool, explain: bool,
            cmd: tuple[str, ...]) -> int:
    """Run CMD with its whole process tree traced, and sign what it read and wrote.

    Reused like any step: when a past run provably stands for it, nothing runs.
    """
    from sharklib.config import ENV_QUIET
    from sharklib.runner.step import trace_step

    return trace_step(list(cmd), backend, use_proxy=use_proxy,
                      python_capture=not no_python_capture, explain=explain,
                      quiet=quiet or os.environ.get(ENV_QUIET, "") not in ("", "0"))
