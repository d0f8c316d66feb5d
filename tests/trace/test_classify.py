"""What a traced path is: data, environment, or sharklib's own business."""

from __future__ import annotations

import os
import tempfile

import sharklib
from sharklib.trace.classify import Classifier, for_session


def test_the_directory_holding_sharklib_is_not_a_data_listing() -> None:
    # sitecustomize/ puts it on sys.path of interpreters that cannot import sharklib otherwise;
    # their import system lists it, which must not make every such stage depend on it
    holder = os.path.dirname(os.path.dirname(os.path.realpath(sharklib.__file__)))
    c = Classifier()
    assert c(holder.rstrip("/") + "/") == "ignored"
    # what lies below it (a project kept beside the package, say) is still data
    assert c(os.path.join(holder, "some-project", "data.csv")) == "data"
    assert c(os.path.join(holder, "some-project") + "/") == "data"


def test_session_classifier_is_shared_and_ignores_sharklib_sessions() -> None:
    session = tempfile.mkdtemp(prefix="sharklib-trace-")
    try:
        a, b = for_session(session), for_session(session)
        assert a is b
        assert a(os.path.join(session, "runs", "x.json")) == "ignored"
        assert a("/proc/self/status") == "ignored"
        assert a("/usr/lib/x86_64-linux-gnu/libc.so.6") == "environment"
    finally:
        os.rmdir(session)


def test_other_session_directories_get_their_own_classifier(tmp_path: str) -> None:
    elsewhere = os.path.join(str(tmp_path), "my-session")
    c = for_session(elsewhere)
    assert c(os.path.join(elsewhere, "runs", "x.json")) == "ignored"
    shared = tempfile.mkdtemp(prefix="sharklib-trace-")
    try:
        assert c is not for_session(shared)
    finally:
        os.rmdir(shared)
