"""Services that capture, the tracer and the runner all need, below all three.

Code and environment identity (:mod:`~sharklib.common.identity`), the canonical
form of a path and the "never data" prefixes (:mod:`~sharklib.common.paths`),
the one warning line a sharklib failure becomes (:mod:`~sharklib.common.safety`),
the environment of a captured child (:mod:`~sharklib.common.environ`) and the
session directory every captured process drops its Run into
(:mod:`~sharklib.common.sessiondir`). They lived in ``capture`` and made
``trace`` and ``runner`` import it while it imported them back; here each of
them is importable from below. Importing this package does nothing.
"""
