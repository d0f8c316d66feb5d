"""Fold the Python capture's Runs into the traced Runs, without duplicates.

A Python process inside a traced tree records itself through the bootstrap
(``$SHARKLIB_SESSION/runs/*.json``) with more detail than syscalls can give:
the script and local modules as code, imported distributions, downloads made
through requests/urllib/httpx, digests taken when a file was read. For every
file the Python record saw, its facts win; files only the tracer saw (a C
extension's opens, a child shell's redirections) are kept from the trace.
"""

from __future__ import annotations

import os

from sharklib.model import Run


def merge_python(traced: Run, py: Run, owns_top: bool) -> None:
    """Merge ``py`` (one Python process of ``traced``'s subtree) into ``traced`` in place.

    ``owns_top``: the Python process is the traced run's top process, so its
    code and environment identity become the run's.
    """
    if owns_top or traced.code.script is None:
        native_code = [a for a in ([traced.code.script] if traced.code.script else [])
                       + traced.code.modules]
        traced.code = py.code
        seen = {a.path for a in ([py.code.script] if py.code.script else []) + py.code.modules}
        traced.code.modules.extend(a for a in native_code if a.path not in seen)
        traced.environment = py.environment
    else:
        known = {m.path for m in traced.code.modules}
        for a in ([py.code.script] if py.code.script else []) + py.code.modules:
            if a.path not in known and a.path != traced.code.script.path:
                traced.code.modules.append(a)
    code_paths = {a.path for a in ([traced.code.script] if traced.code.script else [])
                  + traced.code.modules}

    py_inputs = {a.path: a for a in py.inputs}
    # Python's import system lists the directories its code lives in: that is module lookup,
    # not data; the Python record lists what the script itself listed
    import_dirs = {os.path.dirname(p) + "/" for p in code_paths} - set(py_inputs)
    merged_inputs = [py_inputs.get(a.path, a) for a in traced.inputs
                     if a.path not in code_paths and a.path not in import_dirs]
    have = {a.path for a in merged_inputs}
    merged_inputs.extend(a for a in py.inputs if a.path not in have)
    traced.inputs = merged_inputs

    py_outputs = {o.path: o for o in py.outputs}
    outputs = []
    for o in traced.outputs:
        p = py_outputs.pop(o.path, None)
        if p is None:
            outputs.append(o)
            continue
        if p.inputs is not None and o.inputs is not None:
            # the Python record knows what fed it; add what other processes read before
            extra = [i for i in o.inputs if i not in py_inputs and i not in p.inputs]
            p.inputs = [*p.inputs, *extra]
        p.stream = p.stream or o.stream
        if p.sha256 != o.sha256:  # written again after the Python process closed it
            p.sha256, p.size = o.sha256, o.size
        outputs.append(p)
    outputs.extend(py_outputs.values())
    traced.outputs = outputs
    for attr in ("temporaries", "removed", "connects", "warnings"):
        mine = getattr(traced, attr)
        mine.extend(x for x in getattr(py, attr) if x not in mine)
    from sharklib.model.run import merge_probes

    for path, answer in py.probes.items():  # what the Python process asked without reading
        traced.probes[path] = merge_probes(traced.probes.get(path), answer)
    for name, value_seen in py.variables_read.items():  # what its own code read is an input
        traced.variables_read.setdefault(name, value_seen)
    have_dl = {(d.url, d.sha256) for d in traced.downloads}
    traced.downloads.extend(d for d in py.downloads if (d.url, d.sha256) not in have_dl)
    traced.backend = "merged"
