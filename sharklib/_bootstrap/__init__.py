"""The directory ``sharklib run`` / ``sharklib env`` put first on a child's ``PYTHONPATH``.

It holds one file that matters, ``sitecustomize.py``, which Python executes at
start-up. It lives inside the package (not beside it) so that a wheel, an sdist
and an editable install all ship it at the same place relative to
``sharklib/__init__.py``; this ``__init__`` only makes setuptools treat it as
package code rather than stray data. Nothing imports it.
"""
