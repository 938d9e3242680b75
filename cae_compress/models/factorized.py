"""The rate models: convolutional autoencoders trained for rate and distortion together.

Where the ``dense``/``deep`` models map a tile to a fixed number of floats,
a rate model (architecture ``factorized``) maps an image to a grid of code
values, one vector of ``channels`` values per 8x8 block of pixels, rounds
them to integers, and entropy-codes them with a learned factorized prior
(``cae_compress.entropy_models.factorized``).  Training minimises

    loss = distortion + lambda * rate

with distortion the mean squared error on the 0-255 scale and rate in bits
per pixel: a larger ``lambda`` (``--lmbda``) gives smaller files.  The rate
term sees the codes with additive uniform noise (a differentiable stand-in for
rounding), the decoder sees them rounded, with straight-through gradients, so
it learns to live with the rounding it meets at encode time.

The transforms follow Ballé et al. 2017 at a smaller size: three 5x5
convolutions of stride 2 with GDN between them, and the mirror image with
inverse GDN.  They are fully convolutional: the codec codes a whole image as
one grid of code vectors, one per 8x8 block, which is what ``tile_shape``
and ``code_shape`` describe (see ``cae_compress.codec``).
"""

from __future__ import annotations

import numpy as np

from cae_compress._tf import tf
import keras
from keras import layers, ops

from cae_compress.entropy_models.factorized import FactorizedPrior, integer_tables
from cae_compress.evaluation.metrics import reconstruction_metrics
from cae_compress.io.pixels import from_model_range, to_model_range
from cae_compress.models.layers import GDN
from cae_compress.models import RateDistortionCAE

STRIDE = 8  # pixels per code position along each side
DEFAULT_FILTERS = 64
DEFAULT_CHANNELS = 96
DEFAULT_LMBDA = 100.0  # lambda multiplies the rate in bits per pixel; larger gives smaller files


def _analysis(filters: int, channels: int, image_channels: int):
    inp = keras.Input((None, None, image_channels), name="tile")
    x = layers.Conv2D(filters, 5, strides=2, padding="same", name="conv_0")(inp)
    x = GDN(name="gdn_0")(x)
    x = layers.Conv2D(filters, 5, strides=2, padding="same", name="conv_1")(x)
    x = GDN(name="gdn_1")(x)
    code = layers.Conv2D(channels, 5, strides=2, padding="same", name="code")(x)
    return keras.Model(inp, code, name="encoder")


def _synthesis(filters: int, channels: int, image_channels: int):
    cin = keras.Input((None, None, channels), name="code")
    y = layers.Conv2DTranspose(filters, 5, strides=2, padding="same", name="deconv_0")(cin)
    y = GDN(inverse=True, name="igdn_0")(y)
    y = layers.Conv2DTranspose(filters, 5, strides=2, padding="same", name="deconv_1")(y)
    y = GDN(inverse=True, name="igdn_1")(y)
    out = layers.Conv2DTranspose(image_channels, 5, strides=2, padding="same", name="deconv")(y)
    return keras.Model(cin, out, name="decoder")


@keras.saving.register_keras_serializable(package="cae_compress")
class RateCAE(RateDistortionCAE):
    """A :class:`CAE` with a learned prior over its rounded codes and a rate term in its loss."""

    def __init__(self, encoder, decoder, arch="factorized", prior=None, lmbda=DEFAULT_LMBDA, **kwargs):
        kwargs.setdefault("value_range", (0.0, 1.0))
        super().__init__(encoder, decoder, arch=arch, **kwargs)
        self.prior = prior if prior is not None else FactorizedPrior(name="prior")
        self.lmbda = float(lmbda)

    # ----------------------------------------------------------------- shapes
    @property
    def tile_shape(self):
        """One 8x8 block of pixels: what one code vector stands for."""
        return (STRIDE, STRIDE, int(self.encoder.input_shape[-1]))

    @property
    def code_shape(self):
        return (1, 1, int(self.encoder.output_shape[-1]))

    # --------------------------------------------------------------- training
    def call(self, x, training=False):
        y = self.encoder(x, training=training)
        if not self.prior.built:
            self.prior(y)
        return self.decoder(y + ops.stop_gradient(ops.round(y) - y), training=training)

    def _rd_terms(self, x, training):
        y = self.encoder(x, training=training)
        noisy = y + tf.random.uniform(tf.shape(y), -0.5, 0.5) if training else ops.round(y)
        likelihood = self.prior(noisy)
        x_hat = self.decoder(y + ops.stop_gradient(ops.round(y) - y), training=training)
        pixels = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), "float32")
        bpp = ops.sum(ops.log(likelihood)) / (-np.log(2.0) * pixels)
        per_image = ops.mean(ops.square(x - x_hat), axis=(1, 2, 3)) * 255.0**2
        mse = ops.mean(per_image)
        loss = mse + self.lmbda * bpp
        return {"loss": loss, **self._pixel_terms(x, x_hat), "bpp": bpp}

    # ------------------------------------------------------ export, evaluation
    def entropy_params(self):
        """The prior's per-channel integer tables (inline in ``NAME.lite.json``)."""
        return integer_tables(self.prior)

    def evaluate_tiles(self, tiles: np.ndarray, batch_size: int = 256) -> dict:
        """As the codec codes: codes rounded; ``bpp`` their information content under the prior (the coder is within 0.1 % of it)."""
        x = to_model_range(tiles, self.value_range)
        recon, bits = [], 0.0
        for i in range(0, len(x), batch_size):
            y = np.rint(np.asarray(self.encoder(x[i : i + batch_size], training=False)))
            bits -= float(np.sum(np.log2(np.asarray(self.prior(y)))))
            recon.append(np.asarray(self.decoder(y, training=False)))
        recon = np.concatenate(recon)
        pixels = int(np.prod(tiles.shape[:3]))
        metrics = reconstruction_metrics(tiles, from_model_range(recon, self.value_range))
        bpp = bits / pixels
        return {"loss": metrics["mse"] + self.lmbda * bpp, **metrics, "bpp": bpp, "lmbda": self.lmbda, "tiles": int(len(tiles))}

    # ----------------------------------------------------------------- saving
    def get_config(self):
        return {**super().get_config(), "prior": keras.saving.serialize_keras_object(self.prior), "lmbda": self.lmbda}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["prior"] = keras.saving.deserialize_keras_object(config["prior"])
        return super().from_config(config)


def build_from_flags(input_shape, code_length, filters, l2_penalty, l1_code) -> RateCAE:
    """The registry's builder (``cae train`` flags): ``code_length`` channels per 8x8 block."""
    return build_rate_model(input_shape[2], filters or DEFAULT_FILTERS, code_length)


def build_rate_model(
    image_channels: int = 3, filters: int = DEFAULT_FILTERS, channels: int = DEFAULT_CHANNELS, lmbda: float = DEFAULT_LMBDA
) -> RateCAE:
    """An untrained ``factorized`` rate model."""
    model = RateCAE(
        _analysis(filters, channels, image_channels), _synthesis(filters, channels, image_channels), lmbda=lmbda, name="factorized"
    )
    x = np.zeros((1, 32, 32, image_channels), "float32")
    model(x)
    return model
