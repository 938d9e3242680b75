"""Import TensorFlow without its start-up chatter on stderr.

TensorFlow's C++ runtime writes several informational lines (oneDNN, CUDA
probing) straight to file descriptor 2 while it loads and when it first probes for GPUs, before any
logging setting applies.  A CLI keeps stderr for its own messages, so the import runs
with fd 2 pointed at /dev/null; Python errors still propagate normally.
Set ``CAE_TF_VERBOSE=1`` to see the chatter.
"""

import sys

from cae_compress._quiet import quiet_stderr
from cae_compress.requires import require_tensorflow


def import_tensorflow():
    require_tensorflow("this command")
    if "tensorflow" in sys.modules:
        import tensorflow

        return tensorflow
    with quiet_stderr():
        import tensorflow
        import keras  # noqa: F401  (loads the rest of the native code)
    return tensorflow


tf = import_tensorflow()
