"""``python -m sharklib pipeline run|plan`` reads its options without click, or hands over."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest

from sharklib.cli.pipeline_fast import parse


@pytest.mark.parametrize(("args", "expected"), [
    (["run", "m.md"], {"document": "m.md", "jobs": None, "dry_run": False, "executor": "local",
                       "scheduler": None, "rerun": False}),
    (["run", "-j", "3", "--rerun", "m.md"], {"document": "m.md", "jobs": 3, "rerun": True}),
    (["run", "m.md", "--executor", "dask", "--scheduler", "tcp://h:1"],
     {"executor": "dask", "scheduler": "tcp://h:1"}),
    (["run", "-n", "m.md"], {"dry_run": True}),
    (["plan", "m.md"], {"dry_run": True, "jobs": None}),
    (["plan", "--rerun", "m.md"], {"dry_run": True, "rerun": True}),
])
def test_options_read_by_hand(args: list[str], expected: dict[str, object]) -> None:
    got = parse(args)
    assert got is not None
    for k, v in expected.items():
        assert got[k] == v, (k, got)


@pytest.mark.parametrize("args", [
    ["run"], ["run", "--help"], ["run", "-j", "0", "m.md"], ["run", "-j", "x", "m.md"],
    ["run", "--executor", "nope", "m.md"], ["run", "a.md", "b.md"], ["plan", "-j", "2", "m.md"],
    ["pin", "m.md"], ["from", "x"], ["run", "--bogus", "m.md"],
])
def test_anything_else_goes_to_click(args: list[str]) -> None:
    assert parse(args) is None


def test_same_messages_as_click(tmp_path: Path) -> None:
    def cli(*a: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "sharklib", "pipeline", *a], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)

    bad = cli("run", "-j", "0", "m.md")
    assert bad.returncode == 2 and "Invalid value for '-j'" in bad.stderr
    missing = cli("run", "missing.md")
    assert missing.returncode == 2
    assert missing.stderr.startswith("sharklib: error:") and "missing.md" in missing.stderr
    assert cli("run", "--help").stdout.startswith("Usage: sharklib pipeline run")


def _click_options(cmd: click.Command) -> dict[str, str]:
    """Every option string of a click command → the parameter it sets (``--help`` left out)."""
    out: dict[str, str] = {}
    for p in cmd.params:
        if isinstance(p, click.Option) and p.name is not None:
            for opt in (*p.opts, *p.secondary_opts):
                out[opt] = p.name
    return out


def _choices(cmd: click.Command, name: str) -> tuple[str, ...]:
    (param,) = [p for p in cmd.params if p.name == name]
    assert isinstance(param.type, click.Choice)
    return tuple(param.type.choices)


@pytest.mark.parametrize("sub", ["run", "plan"])
def test_pipeline_options_are_the_click_commands(sub: str) -> None:
    """The hand parser knows exactly the options of ``pipeline run|plan``, setting the same names."""
    from sharklib.cli import pipeline, pipeline_fast

    group = pipeline.command
    assert isinstance(group, click.Group)
    cmd = group.commands[sub]
    assert {**pipeline_fast.FLAGS[sub], **pipeline_fast.VALUED[sub],
            **pipeline_fast.TO_CLICK[sub]} == _click_options(cmd)
    if sub == "run":
        assert _choices(cmd, "executor") == pipeline_fast.EXECUTORS
    # and each of them is taken by the fast path, not handed to click
    samples = {"jobs": "2", "executor": "dask", "scheduler": "tcp://h:1"}
    for opt, dest in pipeline_fast.VALUED[sub].items():
        got = parse([sub, opt, samples[dest], "m.md"])
        assert got is not None and got[dest] != (None if dest != "executor" else "local"), opt
    for opt, dest in pipeline_fast.FLAGS[sub].items():
        got = parse([sub, opt, "m.md"])
        assert got is not None and got[dest] is True, opt
    for opt in pipeline_fast.TO_CLICK[sub]:
        assert parse([sub, opt, "x", "m.md"]) is None, opt


def test_trace_options_are_the_click_commands() -> None:
    from sharklib.cli import trace, trace_fast

    cmd = trace.command
    choices = {opt: dest for opt, (dest, _) in trace_fast.CHOICES.items()}
    assert {**trace_fast.FLAGS, **choices, **trace_fast.TO_CLICK} == _click_options(cmd)
    assert _choices(cmd, "backend") == trace_fast.BACKENDS
    params = {p.name for p in cmd.params}
    for opt, dest in trace_fast.FLAGS.items():
        got = trace_fast.parse([opt, "--", "true"])
        assert got is not None and got[dest] is True and got["cmd"] == ["true"], opt
        assert set(got) == params - set(trace_fast.TO_CLICK.values()), opt
    for backend in trace_fast.BACKENDS:
        for args in (["--backend", backend, "true"], [f"--backend={backend}", "true"]):
            got = trace_fast.parse(args)
            assert got is not None and got["backend"] == backend and got["cmd"] == ["true"]


@pytest.mark.parametrize("args", [
    [], ["--"], ["--help"], ["-h"], ["--backend", "nope", "true"], ["--backend"],
    ["--proxy=1", "true"], ["--bogus", "true"], ["--explain", "true"],
])
def test_trace_anything_else_goes_to_click(args: list[str]) -> None:
    from sharklib.cli.trace_fast import parse as trace_parse

    assert trace_parse(args) is None


def test_env_options_are_the_click_commands() -> None:
    from sharklib.cli import env, env_fast

    cmd = env.command
    assert _click_options(cmd) == {**env_fast.FLAGS, **env_fast.TO_CLICK}
    for opt in env_fast.FLAGS:
        assert env_fast.parse([opt, "--", "make", "-s"]) == {"quiet": True,
                                                             "argv": ["make", "-s"]}
    for opt in env_fast.TO_CLICK:
        assert env_fast.parse([opt, "--", "python", "s.py"]) is None, opt
    # options stop at the command, as with click (allow_interspersed_args=False)
    assert env_fast.parse(["make", "-q", "--", "x"]) == {"quiet": False,
                                                         "argv": ["make", "-q", "--", "x"]}
    assert env_fast.parse(["--", "--", "make"]) == {"quiet": False, "argv": ["--", "make"]}


@pytest.mark.parametrize("args", [[], ["--"], ["-q"], ["--help"], ["-h"], ["--shell"],
                                  ["--bogus", "make"], ["-j2", "make"]])
def test_env_anything_else_goes_to_click(args: list[str]) -> None:
    from sharklib.cli.env_fast import parse as env_parse

    assert env_parse(args) is None


def test_env_fast_path_says_what_click_says(tmp_path: Path) -> None:
    """Exit status and error lines are the same through the fast path and through click."""
    def cli(*a: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "sharklib", "env", *a], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)

    def via_click(*a: str) -> subprocess.CompletedProcess[str]:
        code = "import sys; from sharklib.cli import main; sys.exit(main(sys.argv[1:]))"
        return subprocess.run([sys.executable, "-c", code, "env", *a], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)

    for args in (["--", "no-such-program-xyz"], ["-q", "sh", "-c", "echo hi; exit 3"]):
        fast, slow = cli(*args), via_click(*args)
        assert (fast.returncode, fast.stdout, fast.stderr) == \
            (slow.returncode, slow.stdout, slow.stderr), args
    assert cli("--", "no-such-program-xyz").returncode == 127
    assert cli("sh", "-c", "exit 3").returncode == 3
    assert "click" not in subprocess.run(
        [sys.executable, "-c", "import sys; sys.argv = ['sharklib', 'env', 'true']\n"
         "from sharklib.__main__ import _main\n_main()\nprint(sorted(sys.modules))"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120).stdout
