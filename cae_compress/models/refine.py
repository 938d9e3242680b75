"""Encode-time refinement of a hyperprior model's codes (``cae encode --effort``), TensorFlow.

The analysis network's codes are an amortized guess: one network for every
image.  For one image, the codes that minimise *that* image's
``bits + lambda * 255^2 * MSE`` under the fixed decoder are usually a little
different.  :func:`refine` starts from the analysis codes ``y`` and
hyper-codes ``z`` and takes gradient steps on that loss (Adam), with the
decoder, the hyper-synthesis and the entropy models fixed; rounding is
replaced during the steps by a surrogate with gradients (Campos et al. 2019;
Yang et al. 2020), and at the end the codes are rounded and entropy-coded
exactly as a plain encode does.  The file format and the decoder are
unchanged: a refined file is an ordinary file.

The rounding surrogate is stochastic Gumbel annealing (``sga``, Yang et al.
2020): a soft, random choice between the two nearest integers whose
temperature falls to hard rounding over the steps (it beat straight-through
rounding in our measurements, the README's effort table).

Large images are refined window by window (:data:`WINDOW` code positions
with :data:`MARGIN` of context, multiples of the hyper-code stride so that a
window holds whole hyper-code positions), so memory stays bounded; each
window keeps only the codes of its interior.
"""

from __future__ import annotations

import math

import numpy as np

from cae_compress._tf import tf  # this module is the TensorFlow side of encoding

from cae_compress.codecs.hyperprior import EFFORT_STEPS, HYPER_STRIDE, STRIDE, quality_position
from cae_compress.codecs.layouts import spans
from cae_compress.models import load_model

WINDOW = 48  # code positions per refined window side
MARGIN = 4  # code positions of context around each refined window
LEARNING_RATE = 0.02  # Adam, decayed linearly to a tenth over the steps


def distortion_weight_at(lambdas, quality: float) -> float:
    """The distortion weight (the model's ``lambdas``) of ``quality``: the anchors' mixed in the log domain like the gains."""
    k, f = quality_position(quality, len(lambdas))
    return float(math.exp(math.log(lambdas[k]) * (1 - f) + math.log(lambdas[k + 1]) * f))


def _sga(v, tau):
    """Stochastic Gumbel annealing (Yang et al. 2020, eq. 8): a soft random pick of floor(v) or ceil(v)."""
    lo = tf.stop_gradient(tf.floor(v))
    d_lo = v - lo  # in [0, 1)
    eps = 1e-5
    logits_lo = -tf.atanh(tf.clip_by_value(d_lo, -1 + eps, 1 - eps)) / tau
    logits_hi = -tf.atanh(tf.clip_by_value(1 - d_lo, -1 + eps, 1 - eps)) / tau
    gumbel = -tf.math.log(-tf.math.log(tf.random.uniform(tf.shape(v), 1e-9, 1.0)))
    g2 = -tf.math.log(-tf.math.log(tf.random.uniform(tf.shape(v), 1e-9, 1.0)))
    w_hi = tf.sigmoid(((logits_hi + g2) - (logits_lo + gumbel)) / tau)
    return lo + w_hi


class Refiner:
    """Gradient steps on one window's codes against its own rate + lambda * distortion."""

    def __init__(self, cae, tau0: float = 0.5, tau_decay: float = 4.0):
        self.cae = cae
        self.tau0, self.tau_decay = tau0, tau_decay
        self._step = tf.function(self._step_fn)

    def _loss(self, x, y, z, inverse_gain, weight, tau):
        cae = self.cae
        z_hat = _sga(z, tau)
        y_hat, y_nats = cae.code_latents(y, z_hat, lambda v: _sga(v, tau))  # the model's own entropy model, context and all
        x_hat = cae.decoder(y_hat * inverse_gain, training=False)
        bits = -tf.reduce_sum(y_nats + cae.hyper_nats(z_hat)) / math.log(2.0)
        pixels = tf.cast(tf.shape(x)[1] * tf.shape(x)[2], tf.float32)
        mse = tf.reduce_mean(tf.square(x - x_hat)) * 255.0**2
        return bits / pixels + weight * mse

    def _step_fn(self, x, y, z, m_y, v_y, m_z, v_z, t, inverse_gain, weight, tau, lr):
        with tf.GradientTape() as tape:
            tape.watch([y, z])
            loss = self._loss(x, y, z, inverse_gain, weight, tau)
        gy, gz = tape.gradient(loss, [y, z])
        out = []
        for v, g, m, s in ((y, gy, m_y, v_y), (z, gz, m_z, v_z)):  # Adam, written out so its state is plain tensors
            m = 0.9 * m + 0.1 * g
            s = 0.999 * s + 0.001 * tf.square(g)
            m_hat = m / (1 - 0.9**t)
            s_hat = s / (1 - 0.999**t)
            out += [v - lr * m_hat / (tf.sqrt(s_hat) + 1e-8), m, s]
        return (*out, loss)  # y, m_y, v_y, z, m_z, v_z

    def run(self, x, y, z, inverse_gain, weight, steps: int, lr: float, seed: int = 0, on_step=None):
        """``steps`` Adam steps from (y, z); returns the refined (y, z) as float32 arrays."""
        tf.random.set_seed(seed)
        x, y, z = (tf.constant(a[None], tf.float32) for a in (x, y, z))
        inverse_gain = tf.constant(inverse_gain, tf.float32)
        m_y, v_y, m_z, v_z = (tf.zeros_like(a) for a in (y, y, z, z))
        for i in range(steps):
            frac = i / max(1, steps - 1)
            tau = tf.constant(self.tau0 * math.exp(-self.tau_decay * frac), tf.float32)  # 0.5 -> ~0.01
            lr_i = tf.constant(lr * (1.0 - 0.9 * frac), tf.float32)
            y, m_y, v_y, z, m_z, v_z, _ = self._step(x, y, z, m_y, v_y, m_z, v_z, tf.constant(i + 1, tf.float32),
                                                    inverse_gain, tf.constant(weight, tf.float32), tau, lr_i)
            if on_step is not None:
                on_step(1)
        return np.asarray(y)[0], np.asarray(z)[0]


def refine(cae, x: np.ndarray, y: np.ndarray, z: np.ndarray, inverse_gain: np.ndarray, weight: float, steps: int,
           lr: float = LEARNING_RATE, on_step=None, tau0: float = 0.5, tau_decay: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Refined codes ``y`` (rows, cols, M) and hyper-codes ``z`` of the padded image ``x`` (uint8), window by window.

    Window and margin sizes are multiples of the hyper-code stride, so every
    window holds whole hyper-code positions; each window refines its codes with
    their margins as context and keeps its interior.
    """
    refiner = Refiner(cae, tau0, tau_decay)
    y_out, z_out = y.copy(), z.copy()
    rows, cols, _ = y.shape
    hs = HYPER_STRIDE
    for r0, r1, rl, rh in spans(rows, WINDOW, MARGIN):
        for c0, c1, cl, ch in spans(cols, WINDOW, MARGIN):
            yw, zw = refiner.run(
                x[rl * STRIDE : rh * STRIDE, cl * STRIDE : ch * STRIDE].astype(np.float32) / np.float32(255.0), y_out[rl:rh, cl:ch], z_out[rl // hs : rh // hs, cl // hs : ch // hs],
                inverse_gain, weight, steps, lr, on_step=on_step,
            )
            y_out[r0:r1, c0:c1] = yw[r0 - rl : r1 - rl, c0 - cl : c1 - cl]
            z_out[r0 // hs : r1 // hs, c0 // hs : c1 // hs] = zw[(r0 - rl) // hs : (r1 - rl) // hs, (c0 - cl) // hs : (c1 - cl) // hs]
    return y_out, z_out


def refiner(model, effort: int, on_step=None):
    """The ``refine`` argument of a hyperprior codec's ``compress`` at ``effort`` (2-9): refines with the model's Keras weights.

    ``model`` is the loaded codec; its Keras model is loaded on first use
    (from ``model.keras_path``) when it runs on LiteRT.
    """
    if model.cae is None:
        model.cae = load_model(model.keras_path)
    cae, steps = model.cae, EFFORT_STEPS[effort - 1]

    def run(x, y, z, quality):
        _, inverse = model.gains(quality)
        return refine(cae, x, y, z, inverse, distortion_weight_at(cae.lambdas, quality), steps, on_step=on_step)

    return run
