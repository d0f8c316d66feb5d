"""Test shim: make sure the library patches are installed in captured test processes.

The capture core is meant to call ``sharklib.capture.libs.install()`` when it
starts capture; ``install()`` is idempotent and the patches look the recorder
up only when a patched library is used, so calling it here, before capture
starts, changes nothing once the core does it too. The bootstrap chains to
this file (it shadows it on ``PYTHONPATH``); in the top-level process of
``python -m sharklib run`` it is the only ``sitecustomize``.
"""

import os

if os.environ.get("SHARKLIB_CAPTURE") or os.environ.get("SHARKLIB_TEST_LIBS_SHIM"):
    from sharklib.capture.libs import install

    install()
