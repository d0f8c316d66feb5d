"""verify without a policy lists a countersignature by a key this machine does not know."""

from __future__ import annotations

from pathlib import Path

from viewkit import shark


def test_an_unknown_countersigner_is_listed_not_hidden(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "s.py").write_text("open('o.txt', 'w').write('x')\n")
    assert shark("run", "-q", "s.py", cwd=tmp_path).returncode == 0
    inst = tmp_path / "institution.pem"
    assert shark("keys", "generate", "-o", str(inst)).returncode == 0
    signed = shark("sign", "--countersign", "--key", str(inst), "o.txt", cwd=tmp_path)
    assert signed.returncode == 0, signed.stderr
    keyid = signed.stdout.split("with key ", 1)[1].split(":", 1)[0]
    r = shark("verify", "o.txt", cwd=tmp_path, env={"COLUMNS": "200"})
    assert r.returncode == 0, r.stdout + r.stderr  # no policy: the own signature suffices
    row = next(line for line in r.stdout.splitlines() if "python s.py" in line)
    assert f"unknown key {keyid[:8]}…" in row, r.stdout
    assert "own (" in row and "1 good signature" in r.stdout
