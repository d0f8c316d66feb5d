"""The key text of a Snakemake ``script:`` job's temporary file (capture.snakemake_script).

Built from the shape Snakemake 9 writes (``snakemake/script/__init__.py``, ``PythonScript``):
what changes between two runs of the same job (the per-run source cache directory on the
search path, where the project and the interpreter live) is not in the key; what the job is
(the pickled input, output, params, ...) is.
"""

from __future__ import annotations

from sharklib.capture.snakemake_script import END, START, parse

TMP = "/home/ann/proj/.snakemake/scripts/tmpab12cd34.plot.py"


def _file(root: str, cache: str, pickled: str, source: str = "print(1)\n") -> bytes:
    line = (f"import sys;sys.path.extend(['{root}/scripts', '/home/ann/.cache/snakemake/"
            f"snakemake/source-cache/snakemake-runtime-cache/{cache}/file{root}/scripts']);"
            f"import pickle;snakemake = pickle.loads({pickled});"
            f"from snakemake.logging import logger;__real_file__ = __file__; "
            f"__file__ = '{root}/scripts/plot.py';")
    return START + line.encode() + b"\n" + END + source.encode()


def test_random_parts_and_places_are_not_in_the_key() -> None:
    one = parse(TMP, _file("/home/ann/proj", "tmpaaaa1111", r"b'\x80params=3'"))
    two = parse("/srv/b/proj/.snakemake/scripts/tmpzz.plot.py",
                _file("/srv/b/proj", "tmpbbbb2222", r"b'\x80params=3'"))
    assert one is not None and two is not None
    assert one.original == "/home/ann/proj/scripts/plot.py"
    assert one.source == b"print(1)\n"
    assert one.key_text([("/home/ann/proj", "<project>")]) == \
        two.key_text([("/srv/b/proj", "<project>")])


def test_the_job_itself_is_in_the_key() -> None:
    one = parse(TMP, _file("/home/ann/proj", "tmpaaaa1111", r"b'\x80params=3'"))
    other = parse(TMP, _file("/home/ann/proj", "tmpaaaa1111", r"b'\x80params=5'"))
    assert one is not None and other is not None
    assert one.key_text([]) != other.key_text([])


def test_other_files_are_not_script_jobs() -> None:
    data = _file("/home/ann/proj", "tmpaaaa1111", "b''")
    assert parse("/home/ann/proj/scripts/plot.py", data) is None
    assert parse(TMP, b"print(1)\n") is None
    remote = data.replace(b"__file__ = '/home/ann/proj/scripts/plot.py'",
                          b"__file__ = 'https://example.org/plot.py'")
    assert parse(TMP, remote) is None
