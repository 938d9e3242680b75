"""Networks of a Keras model (TensorFlow) as callables on float32 NHWC arrays: the ``--backend tensorflow`` path.

The codec (``cae_compress.codecs``) calls them exactly as it calls the
LiteRT runners (``cae_compress.runtime.litert``).  A network is the Keras
model's sub-model of the same name (``encoder``, ``decoder``,
``hyper_encoder``, ``hyper_mean``).  Nothing here imports TensorFlow itself:
the Keras model handed in already did.
"""

from __future__ import annotations

import numpy as np


def networks(cae, names) -> dict:
    """The sub-models ``names`` of ``cae``, called in inference mode, returning numpy arrays."""
    def call(sub):
        return lambda x: np.asarray(sub(np.asarray(x, np.float32), training=False))

    return {name: call(getattr(cae, name)) for name in names}
