"""``sharklib doctor``: one screen on what this machine allows (always exits 0)."""

from __future__ import annotations

import sys

import click


@click.command(name="doctor")
def command() -> int:
    """Check eBPF/ptrace, copy-on-write restores, ZFS/btrfs, the remote, the key, the bootstrap."""
    from sharklib.views.doctor import render, run_checks

    render(run_checks(), sys.stdout)
    return 0
