"""Import TensorFlow without its start-up chatter on stderr.

TensorFlow's C++ runtime writes several informational lines (oneDNN, CUDA
probing) straight to file descriptor 2 while it loads and when it first probes for GPUs, before any
logging setting applies.  A CLI keeps stderr for its own messages, so the import runs
with fd 2 pointed at /dev/null; Python errors still propagate normally.
Set ``CAE_TF_VERBOSE=1`` to see the chatter.
"""

import contextlib
import os
import sys


@contextlib.contextmanager
def quiet_stderr():
    """Point file descriptor 2 at /dev/null for the duration (native chatter only)."""
    if os.environ.get("CAE_TF_VERBOSE"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow():
    if "tensorflow" in sys.modules:
        import tensorflow

        return tensorflow
    with quiet_stderr():
        import tensorflow
        import keras  # noqa: F401  (loads the rest of the native code)
    return tensorflow


tf = import_tensorflow()
