"""Python capture: the bootstrap, the audit hook, the recorder, running a script as ``__main__``.

Importing this package does nothing; :mod:`sharklib.capture.bootstrap` starts
capture and :mod:`sharklib.capture.main` runs ``sharklib run``.
"""
