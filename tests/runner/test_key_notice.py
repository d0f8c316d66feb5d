"""sharklib's own one-time notices are about the run that printed them, never replayed.

The first run on a machine creates the signing key and says so; a reuse of that run replays
what the script printed, and the notice is not part of it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_the_key_creation_notice_is_not_replayed(tmp_path: Path) -> None:
    proj = tmp_path / "p"
    (proj / ".git").mkdir(parents=True)
    (proj / "io.py").write_text("print('hi')\nopen('o.txt', 'w').write('x')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARKLIB_")}
    env["SHARKLIB_HOME"] = str(tmp_path / "fresh-home")  # no key yet
    runs = [subprocess.run([sys.executable, "-m", "sharklib", "run", "io.py"], cwd=proj,
                           env=env, capture_output=True, text=True, timeout=120)
            for _ in range(2)]
    assert "created signing key" in runs[0].stderr
    assert "reused run" in runs[1].stderr
    assert "created signing key" not in runs[1].stderr, runs[1].stderr
    assert runs[0].stdout == runs[1].stdout == "hi\n"
