"""Snakemake ``script:`` jobs: the code identity of the temporary copy Snakemake runs.

For a rule with ``script: "scripts/plot.py"``, Snakemake (``snakemake/script/__init__.py``,
``ScriptBase.evaluate`` and ``PythonScript``) writes
``.snakemake/scripts/tmpXXXXXXXX.plot.py``: one preamble line between two marker lines
(``sys.path.extend([...])``, ``snakemake = pickle.loads(b'...')`` holding the job's input,
output, params, wildcards, threads, resources, log, config, rule name and script directory,
then ``__file__ = '<the user's script>'``), followed by the user's script unchanged; it then
runs ``python <that temporary file>`` and deletes it. The file name is random every run, and so
is one entry of the preamble's search path (Snakemake's per-run source cache,
``.../snakemake-runtime-cache/tmpXXXXXXXX/...``). Everything else in the preamble is what the
job's behaviour depends on.

So such a job is keyed on the user's script (path relative to the project, digest of the source
that ran) plus the preamble with its random parts and machine-specific directories replaced by
symbols, not on the temporary name: the same job with the same script, inputs, params and
environment is the same run, and a change to any of them is a new one. Its record names the
user's script, as lineage should.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

START = b"######## snakemake preamble start (automatically inserted, do not edit) ########\n"
END = b"######## snakemake preamble end #########\n"
_FILE_OVERRIDE = b"__real_file__ = __file__; __file__ = "
#: Snakemake's per-run source cache directory (``tempfile.TemporaryDirectory`` under
#: ``snakemake-runtime-cache``), on the preamble's search path: a new name every run
_RUNTIME_CACHE = re.compile(rb"(snakemake-runtime-cache/)tmp[A-Za-z0-9_]+")


class ScriptJob:
    """A Snakemake ``script:`` job's temporary file, taken apart.

    ``original``: the user's script as the preamble names it (``__file__``), absolute;
    ``preamble``: the preamble line as written, random parts still in it; ``source``: the
    user's script as it ran (the bytes after the preamble). A plain class: this is built at the
    start of a captured script, where the import of ``dataclasses`` would show.
    """

    __slots__ = ("original", "preamble", "source")

    def __init__(self, original: str, preamble: bytes, source: bytes) -> None:
        self.original = original
        self.preamble = preamble
        self.source = source

    def key_text(self, places: Sequence[tuple[str, str]]) -> bytes:
        """The preamble with its per-run random parts and ``places`` replaced by symbols."""
        text = _RUNTIME_CACHE.sub(rb"\1<tmp>", self.preamble)
        for directory, symbol in sorted(places, key=lambda p: -len(p[0])):
            d = directory.rstrip("/")
            if d:
                text = text.replace(d.encode("utf-8", "surrogateescape"),
                                    symbol.encode("utf-8"))
        return text


def is_temporary_script(path: str) -> bool:
    """Is ``path`` where Snakemake writes a ``script:`` job's copy (``.snakemake/scripts/tmp*``)?"""
    return (os.path.basename(os.path.dirname(path)) == "scripts"
            and os.path.basename(os.path.dirname(os.path.dirname(path))) == ".snakemake"
            and os.path.basename(path).startswith("tmp"))


def parse(path: str, data: bytes) -> ScriptJob | None:
    """``path``'s content as a Snakemake Python ``script:`` job, or ``None`` if it is not one.

    Only a local script (an absolute ``__file__`` in the preamble) is recognised: a remote one
    (``script: "https://..."``) keeps the temporary file as its code, so it is never reused.
    """
    if not is_temporary_script(path) or not data.startswith(START):
        return None
    end = data.find(END, len(START))
    if end < 0:
        return None
    preamble = data[len(START):end]
    at = preamble.rfind(_FILE_OVERRIDE)
    if at < 0:
        return None
    literal = preamble[at + len(_FILE_OVERRIDE):].strip().rstrip(b";").strip()
    import ast

    try:
        original = ast.literal_eval(literal.decode("utf-8", "surrogateescape"))
    except (ValueError, SyntaxError):
        return None
    if not isinstance(original, str) or not os.path.isabs(original):
        return None
    return ScriptJob(original=original, preamble=preamble, source=data[end + len(END):])
