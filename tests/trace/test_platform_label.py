"""The platform a traced run records is ``platform.platform()``'s, found without ``uname -p``."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess

import pytest

from sharklib.trace.assemble import platform_label


def test_platform_label_is_what_platform_platform_says() -> None:
    if os.uname().sysname != "Linux":
        pytest.skip("platform_label asks the platform module itself outside Linux")
    uname = shutil.which("uname")
    if uname is None:
        pytest.skip("no uname program to compare the processor field with")
    processor = subprocess.run([uname, "-p"], capture_output=True, text=True).stdout.strip()
    if processor not in ("unknown", "", os.uname().machine):
        pytest.skip(f"uname -p says {processor!r}: platform.platform() then names it too")
    assert platform_label() == platform.platform()
