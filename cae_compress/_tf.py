"""Import TensorFlow without its start-up chatter on stderr.

TensorFlow's C++ runtime writes several informational lines (oneDNN, CUDA
probing) straight to file descriptor 2 while it loads, before any logging
setting applies.  A CLI keeps stderr for its own messages, so the import runs
with fd 2 pointed at /dev/null; Python errors still propagate normally.
Set ``CAE_TF_VERBOSE=1`` to see the chatter.
"""

import os
import sys


def import_tensorflow():
    if "tensorflow" in sys.modules or os.environ.get("CAE_TF_VERBOSE"):
        import tensorflow

        return tensorflow
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow
        import keras  # noqa: F401  (loads the rest of the native code)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return tensorflow


tf = import_tensorflow()
