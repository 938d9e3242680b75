"""Layers of the transforms: GDN and its inverse (Ballé et al. 2016), the normalisation of the rate models."""

from __future__ import annotations

from cae_compress._tf import tf  # noqa: F401  (quiet import first)
import keras
from keras import ops


@keras.saving.register_keras_serializable(package="cae_compress")
class GDN(keras.layers.Layer):
    """Generalized divisive normalisation ``x / sqrt(beta + gamma . x^2)``; ``inverse`` multiplies instead.

    ``beta`` and ``gamma`` are kept non-negative by squaring their parameters,
    with a small floor so the division stays defined.
    """

    FLOOR = 1e-6  # added to beta^2

    def __init__(self, inverse=False, **kwargs):
        super().__init__(**kwargs)
        self.inverse = bool(inverse)

    def build(self, input_shape):
        c = int(input_shape[-1])
        self.beta = self.add_weight(name="beta", shape=(c,), initializer="ones")
        self.gamma = self.add_weight(name="gamma", shape=(c, c), initializer=keras.initializers.Identity(0.1))

    def call(self, x):
        beta = ops.square(self.beta) + self.FLOOR
        gamma = ops.square(self.gamma)
        norm = ops.sqrt(ops.matmul(ops.square(x), gamma) + beta)  # a 1x1 convolution of x^2
        return x * norm if self.inverse else x / norm

    def get_config(self):
        return {**super().get_config(), "inverse": self.inverse}
