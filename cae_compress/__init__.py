"""cae_compress: image compression with convolutional autoencoders.

Importing the package is cheap: TensorFlow is imported only by the modules
that need it (models, training, the TensorFlow inference path).
"""

__version__ = "0.3.0"

import os as _os

# TensorFlow and Keras print start-up chatter on stderr; a CLI keeps stderr for
# its own messages.  Users can still raise the level by setting these first.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
_os.environ.setdefault("KERAS_BACKEND", "tensorflow")
