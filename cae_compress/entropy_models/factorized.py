"""The learned entropy model of the rate models: a factorized prior, as Keras layers.

Ballé et al. 2018 ("Variational image compression with a scale hyperprior",
appendix 6.1) model each code channel's density with a small monotone network
giving its cumulative distribution ``c(y)``; the probability of an integer
``k`` is ``c(k + 1/2) - c(k - 1/2)``.  During training the codes get additive
uniform noise, so this is also the likelihood of the noisy code, and
``-log2`` of it summed over the code is the rate the loss pays for.

:func:`integer_tables` turns the trained density into what the coder uses
(``cae_compress.entropy_models.tables``): for each channel, the integer frequencies of every
symbol in a fixed range, summing to ``2**PRECISION``.  They are computed once,
when the model is exported, and stored beside it; decoding never evaluates the
floats again, so a file decodes the same on every machine.

"""

from __future__ import annotations

import numpy as np

from cae_compress._tf import tf  # noqa: F401  (quiet import first; a Keras layer: this module is the training side)
import keras
from keras import ops

from cae_compress.entropy_models.tables import PRECISION

TAIL_MASS = 1e-9  # probability left outside a channel's symbol range, at most (per side)
MAX_HALF_RANGE = 255  # no channel codes symbols beyond +-this


@keras.saving.register_keras_serializable(package="cae_compress")
class FactorizedPrior(keras.layers.Layer):
    """Per-channel learned density of the code; ``call(y)`` gives the likelihood of each value.

    ``filters`` are the hidden widths of the per-channel monotone network
    (3, 3, 3 as in the paper); ``init_scale`` is the initial spread.
    """

    def __init__(self, filters=(3, 3, 3), init_scale=10.0, likelihood_bound=1e-9, **kwargs):
        super().__init__(**kwargs)
        self.filters = tuple(int(f) for f in filters)
        self.init_scale = float(init_scale)
        self.likelihood_bound = float(likelihood_bound)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.channels = channels
        widths = (1, *self.filters, 1)
        scale = self.init_scale ** (1.0 / (len(self.filters) + 1))
        self._matrices, self._biases, self._factors = [], [], []
        for i in range(len(self.filters) + 1):
            init = float(np.log(np.expm1(1.0 / scale / widths[i + 1])))
            self._matrices.append(
                self.add_weight(name=f"matrix_{i}", shape=(channels, widths[i + 1], widths[i]), initializer=keras.initializers.Constant(init))
            )
            self._biases.append(
                self.add_weight(name=f"bias_{i}", shape=(channels, widths[i + 1], 1), initializer=keras.initializers.RandomUniform(-0.5, 0.5))
            )
            if i < len(self.filters):
                self._factors.append(self.add_weight(name=f"factor_{i}", shape=(channels, widths[i + 1], 1), initializer="zeros"))

    def logits_cdf(self, v):
        """Logits of the cumulative distribution at ``v``, shaped (channels, 1, n)."""
        for i, (m, b) in enumerate(zip(self._matrices, self._biases)):
            v = ops.matmul(ops.softplus(m), v) + b
            if i < len(self._factors):
                v = v + ops.tanh(self._factors[i]) * ops.tanh(v)
        return v

    def _per_channel(self, y):
        """(..., C) values as (C, 1, n) rows, and a function putting results back in shape."""
        shape = ops.shape(y)
        rows = ops.reshape(ops.transpose(ops.reshape(y, (-1, self.channels))), (self.channels, 1, -1))

        def back(v):
            return ops.reshape(ops.transpose(ops.reshape(v, (self.channels, -1))), shape)

        return rows, back

    def call(self, y):
        rows, back = self._per_channel(y)
        lower = self.logits_cdf(rows - 0.5)
        upper = self.logits_cdf(rows + 0.5)
        # evaluate on the side of the median where the sigmoid is not saturated
        sign = ops.stop_gradient(-ops.sign(lower + upper))
        likelihood = ops.abs(ops.sigmoid(sign * upper) - ops.sigmoid(sign * lower))
        return back(ops.maximum(likelihood, self.likelihood_bound))

    def get_config(self):
        return {**super().get_config(), "filters": list(self.filters), "init_scale": self.init_scale, "likelihood_bound": self.likelihood_bound}


def _cdf(prior: FactorizedPrior, points: np.ndarray) -> np.ndarray:
    """The cumulative distribution of every channel at ``points`` (float64, shape (C, n))."""
    v = np.broadcast_to(points.astype("float32"), (prior.channels, 1, len(points)))
    logits = np.asarray(prior.logits_cdf(ops.convert_to_tensor(np.ascontiguousarray(v))), np.float64)[:, 0, :]
    return sigmoid(logits)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function without overflow: ``1 / (1 + exp(-x))`` where ``x >= 0``, ``exp(x) / (1 + exp(x))`` below.

    ``exp`` only ever sees values <= 0, so it never overflows (a logit far
    below zero used to make ``exp(-x)`` infinite and warn); for ``x >= 0``
    the numbers are those of the plain formula, bit for bit, and below zero
    they agree to rounding, so the tables made from them do not change
    (``tests/test_rate.py`` checks the shipped models' tables).
    """
    x = np.asarray(x, np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def integer_tables(prior: FactorizedPrior, precision: int = PRECISION) -> dict:
    """Each channel's symbol range and integer frequencies, for the coder.

    A channel codes the integers ``offset .. offset + len(freqs) - 1``: the
    smallest range outside which at most :data:`TAIL_MASS` of the density
    lies on each side.  Every symbol in it gets a frequency of at least 1, and
    each channel's frequencies sum to ``2**precision``.
    """
    grid = np.arange(-MAX_HALF_RANGE, MAX_HALF_RANGE + 1, dtype=np.float64)
    cdf = _cdf(prior, np.concatenate([grid - 0.5, grid[-1:] + 0.5]))  # (C, 2R+2)
    total = 1 << precision
    offsets, freqs = [], []
    for c in range(prior.channels):
        lo = int(np.searchsorted(cdf[c], TAIL_MASS, side="right")) - 1
        hi = int(np.searchsorted(cdf[c], 1.0 - TAIL_MASS, side="left"))
        lo, hi = max(lo, 0), min(max(hi, lo + 1), len(grid))
        pmf = np.diff(cdf[c, lo : hi + 1])
        pmf = np.maximum(pmf, 0.0) / max(pmf.sum(), 1e-300)
        counts = np.maximum(1, np.floor(pmf * (total - len(pmf)))).astype(np.int64)
        counts[np.argmax(counts)] += total - counts.sum()  # exact total; the mode absorbs the rounding
        offsets.append(int(grid[lo]))
        freqs.append(counts.tolist())
    return {"precision": precision, "offsets": offsets, "frequencies": freqs}
