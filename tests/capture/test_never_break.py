"""A corpus of scripts behaves identically plainly and under ``python -m sharklib run -q``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

CORPUS: dict[str, tuple[str, str | None]] = {
    "raise": ("import sys\nprint('before')\ndef f():\n    raise ValueError('boom')\nf()\n", None),
    "exit3": ("import sys\nprint('x')\nsys.exit(3)\n", None),
    "exitmsg": ("import sys\nsys.exit('fatal: msg')\n", None),
    "raise_systemexit": ("raise SystemExit(7)\n", None),
    "os_exit": ("import os, sys\nprint('partial', flush=True)\nopen('o.txt', 'w').write('1')\nos._exit(4)\n", None),
    "sigterm": ("import os, signal, sys\nsys.stdout.write('lost?')\nos.kill(os.getpid(), signal.SIGTERM)\n", None),
    "keyboard": ("raise KeyboardInterrupt\n", None),
    "syntax": ("def (:\n", None),
    "chained": ("try:\n    1/0\nexcept ZeroDivisionError as e:\n    raise RuntimeError('wrapped') from e\n", None),
    # through the wrapped open (and so a frame of sharklib's) straight into the C function
    "missing_file": ("import csv\nrows = list(csv.reader(open('stations.csv')))\n", None),
    "missing_chained": ("try:\n    open('nope.csv')\nexcept OSError as e:\n"
                        "    raise ValueError('no data') from e\n", None),
    "threads": ("import threading\n"
                "def w(i):\n    open(f't{i}.txt', 'w').write(str(i) * 1000)\n"
                "ts = [threading.Thread(target=w, args=(i,)) for i in range(8)]\n"
                "[t.start() for t in ts]; [t.join() for t in ts]\nprint('ok')\n", None),
    "stdin": ("import sys\ndata = sys.stdin.read()\nprint(len(data), data.upper())\n", "hello\nworld\n"),
    "chdir": ("import os\nos.mkdir('sub')\nos.chdir('sub')\nopen('in_sub.txt', 'w').write('x')\n"
              "print(os.getcwd().endswith('sub'), open('in_sub.txt').read())\n", None),
    "prints_lots": ("import sys\nfor i in range(20000):\n    print(i, 'x' * 40)\n"
                    "sys.stderr.write('err line\\n' * 100)\n", None),
    "argv_main": ("import sys, __main__\nprint(sys.argv, __name__, __file__.endswith('s.py'),"
                  " __spec__, __package__, type(__loader__).__name__, sys.path[0] == __import__('os').path.dirname(__file__))\n", None),
    "multiprocessing": ("import multiprocessing as mp\n"
                        "def sq(x):\n    return x * x\n"
                        "if __name__ == '__main__':\n"
                        "    for m in ('fork', 'spawn', 'forkserver'):\n"
                        "        with mp.get_context(m).Pool(2) as p:\n"
                        "            print(m, p.map(sq, range(5)))\n", None),
    "futures": ("import concurrent.futures as cf\n"
                "def sq(x):\n    return x * x\n"
                "if __name__ == '__main__':\n"
                "    with cf.ProcessPoolExecutor(2) as ex:\n        print(list(ex.map(sq, range(6))))\n"
                "    with cf.ThreadPoolExecutor(2) as ex:\n        print(list(ex.map(sq, range(6))))\n", None),
    "subprocess": ("import subprocess, sys\n"
                   "r = subprocess.run([sys.executable, '-c', 'import sys; print(\"child\", sys.argv[1:]); sys.exit(5)', 'a'],"
                   " capture_output=True, text=True)\nprint(r.returncode, r.stdout.strip())\n", None),
    "execv": ("import os, sys\nprint('before exec', flush=True)\n"
              "os.execv(sys.executable, [sys.executable, '-c', 'import sys; print(\"after\"); sys.exit(6)'])\n", None),
    "atexit": ("import atexit\natexit.register(lambda: print('bye'))\nprint('hi')\n", None),
    "bad_path_types": ("for bad in (3.5, None, object()):\n    try:\n        open(bad)\n"
                       "    except (TypeError, OSError) as e:\n        print(type(e).__name__)\n"
                       "try:\n    open('nul\\0byte')\nexcept ValueError:\n    print('ValueError')\n", None),
    "weird_names": ("import os\nfor name in (b'new\\nline.txt', b'bad\\xff\\xfe.txt', 'sp ace \u00e9.txt'.encode()):\n"
                    "    with open(name, 'wb') as fh:\n        fh.write(name)\n"
                    "    print(open(name, 'rb').read() == name)\n", None),
    "excepthook": ("import sys\nsys.excepthook = lambda t, v, tb: print('custom', t.__name__, v)\nraise OSError('x')\n", None),
}


def _strip(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith("sharklib: "))


#: buffering only matters for scripts that die without flushing or print a lot
UNBUFFERED_TOO = ("sigterm", "os_exit", "prints_lots", "execv", "raise")
CASES = [(n, False) for n in sorted(CORPUS)] + [(n, True) for n in UNBUFFERED_TOO]


@pytest.mark.parametrize(("name", "unbuffered"), CASES,
                         ids=[f"{n}-{'unbuffered' if u else 'buffered'}" for n, u in CASES])
def test_same_as_plain(name: str, unbuffered: bool, tmp_path: Path, run_plain, run_captured) -> None:
    source, stdin = CORPUS[name]
    env = {"PYTHONUNBUFFERED": "1"} if unbuffered else {"PYTHONUNBUFFERED": ""}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    plain_dir, cap_dir = tmp_path / "plain", tmp_path / "captured"
    for d in (plain_dir, cap_dir):
        d.mkdir()
        (d / "s.py").write_text(source)
    if not unbuffered:
        env.pop("PYTHONUNBUFFERED")
    plain = run_plain(["s.py"], cwd=plain_dir, stdin=stdin, env=env)
    cap = run_captured(["s.py"], cwd=cap_dir, stdin=stdin, env=env)
    assert cap.returncode == plain.returncode
    assert cap.stdout == plain.stdout
    assert cap.stderr.replace(str(cap_dir), str(plain_dir)) == plain.stderr
    assert "sharklib" not in cap.stderr


def test_summary_line_is_the_only_difference(tmp_path: Path, run_plain, run_captured) -> None:
    (tmp_path / "s.py").write_text("open('a.txt', 'w').write('a')\nprint('done')\n")
    plain = run_plain(["s.py"])
    cap = run_captured(["s.py"], quiet=False)
    assert cap.stdout == plain.stdout
    lines = cap.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sharklib: recorded 1 output (0 inputs) in ")
    assert "sidecars: a.txt.intoto.jsonl — sharklib show a.txt" in lines[0]


def test_read_only_output_dir_degrades_to_one_warning(tmp_path: Path, run_captured) -> None:
    if os.geteuid() == 0:
        # root ignores directory permissions: make the sidecar path a directory instead
        (tmp_path / "a.txt.intoto.jsonl").mkdir()
    else:
        pytest.skip("needs root to exercise the sidecar-collision failure path here")
    (tmp_path / "s.py").write_text("open('a.txt', 'w').write('a')\nprint('done')\nraise SystemExit(2)\n")
    cap = run_captured(["s.py"])
    assert cap.returncode == 2 and cap.stdout == "done\n"
    warnings = [line for line in cap.stderr.splitlines() if line.startswith("sharklib: warning:")]
    assert len(warnings) == 1 and "a.txt.intoto.jsonl" in warnings[0], cap.stderr
    assert cap.stderr.strip() == warnings[0]


@pytest.mark.parametrize("kind", ["corrupt", "missing"])
def test_bad_key_degrades_to_one_warning(kind: str, tmp_path: Path, run_captured) -> None:
    bad = tmp_path / "bad.pem"
    if kind == "corrupt":
        bad.write_text("-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n")
    (tmp_path / "s.py").write_text("open('a.txt', 'w').write('a')\nprint('done')\n")
    cap = run_captured(["s.py"], env={"SHARKLIB_KEY": str(bad)})
    assert cap.returncode == 0 and cap.stdout == "done\n"
    lines = cap.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sharklib: warning:") and "bad.pem" in lines[0]
    assert not (tmp_path / "a.txt.intoto.jsonl").exists()
    # the run is still recorded in the session, with the warning
    assert cap.top()["warnings"]


def test_missing_script_matches_python(tmp_path: Path, run_plain, run_captured) -> None:
    plain = run_plain(["nope.py"])
    cap = run_captured(["nope.py"])
    assert cap.returncode == plain.returncode == 2
    assert cap.stderr.split(":", 1)[1] == plain.stderr.split(":", 1)[1]


def test_module_and_code_forms(tmp_path: Path, run_plain, run_captured) -> None:
    (tmp_path / "mod.py").write_text("import sys\nprint(__name__, sys.argv[1:])\nraise SystemExit(3)\n")
    for args in (["-m", "mod", "x"], ["-c", "import sys; print(sys.argv); open('c.txt','w')", "y"]):
        plain = run_plain(args)
        cap = run_captured(args)
        assert (cap.returncode, cap.stdout, cap.stderr) == (plain.returncode, plain.stdout, plain.stderr)


def test_console_script_runs_the_same(tmp_path: Path, run_plain, capture_env) -> None:
    import subprocess

    (tmp_path / "s.py").write_text("import sys\nprint(sys.argv)\nsys.exit(3)\n")
    exe = Path(sys.executable).parent / "sharklib"
    p = subprocess.run([str(exe), "run", "-q", "s.py", "a"], cwd=tmp_path, capture_output=True,
                       text=True, env=capture_env())
    plain = run_plain(["s.py", "a"])
    assert (p.returncode, p.stdout, p.stderr) == (plain.returncode, plain.stdout, plain.stderr)


def test_tracebacks_under_env_are_the_interpreters(tmp_path: Path, run_plain) -> None:
    # `sharklib env`: the script runs by Python's own runner, with the bootstrap's hooks in it
    import os
    import subprocess
    import sys

    source, _ = CORPUS["missing_chained"]
    (tmp_path / "s.py").write_text(source)
    plain = run_plain(["s.py"], cwd=tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    cap = subprocess.run([os.path.join(os.path.dirname(sys.executable), "sharklib"), "env", "--",
                          sys.executable, "s.py"], cwd=tmp_path, capture_output=True, text=True,
                         env=env, timeout=120)
    assert (cap.returncode, cap.stdout, cap.stderr) == (plain.returncode, plain.stdout, plain.stderr)


def test_a_signal_during_the_patch_packages_import_ends_without_a_warning(tmp_path: Path) -> None:
    """A pool's terminate can land while a spawned worker still imports the library patches.

    The import system then holds a module object with none of its names yet; ending the run
    from the SIGTERM handler must treat that as "nothing patched", not warn (CI saw the warning
    from a spawn pool: "partially initialized module 'sharklib.capture.libs' has no attribute
    'flush'"). The half-imported module is built here the way the import system leaves it.
    """
    import subprocess
    import textwrap

    code = textwrap.dedent("""
        import sys, types
        from sharklib.capture import finish
        sys.modules["sharklib.capture.libs"] = types.ModuleType("sharklib.capture.libs")
        finish._flush_library_patches()
        print("ended")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ended\n"
    assert done.stderr == ""
