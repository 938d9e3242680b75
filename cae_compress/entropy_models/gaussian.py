"""The Gaussian conditional of the hyperprior model, exact on every machine.

A hyperprior model codes each rounded code value with a zero-mean Gaussian
whose scale its hyper-synthesis predicts.  If the encoder and the decoder
chose different scales for one value the range coder would desync and the
rest of the image would be garbage (the top complaint of CompressAI's and
tensorflow-compression's users).  So the scale is never a float here:

* the scales form a fixed table of :data:`LEVELS` values, log-spaced from
  0.11 to 256, and each has an integer frequency table (:func:`gaussian_tables`),
  computed once at export and stored beside the model;
* the scale branch of the hyper-synthesis is run as an **integer network**
  (:class:`IntegerScaleNet`): its weights are fixed-point integers, its input
  (the rounded hyper-codes) is integer, and every activation is rounded to a
  fixed-point integer with a floor division by a power of two.  All values
  are integers held in float64 far below 2**53, so every sum is exact in any
  order and on any BLAS; the last layer gives the table index directly.

Means are floats: a mean that differs by 1e-6 between machines moves the
decoded value by 1e-6, it cannot desync the coder.

:class:`GaussianConditional` is the entropy model as one part: the
likelihood that training and encode-time refinement minimise, the integer
tables made from it, and the range coding of symbols by scale index.

Imports: TensorFlow only inside :meth:`GaussianConditional.likelihood` (the
training side); constriction when the first symbols are coded.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cae_compress.entropy_models.tables import PRECISION
from cae_compress.errors import CaeError

LEVELS = 64
SCALE_MIN, SCALE_MAX = 0.11, 256.0  # the scales the model can choose; training clips its log-scales to them too
LOG_STEP = (math.log(SCALE_MAX) - math.log(SCALE_MIN)) / (LEVELS - 1)
LIKELIHOOD_BOUND = 1e-9  # the smallest probability training and refinement give a value
WEIGHT_BITS = 14  # fractional bits of the integer weights
ACTIVATION_BITS = 8  # fractional bits of the integer activations
MIN_HALF_RANGE = 32  # every scale codes at least the symbols -32..32


def scale_table() -> np.ndarray:
    return np.exp(math.log(SCALE_MIN) + LOG_STEP * np.arange(LEVELS))


def gaussian_tables(precision: int = PRECISION) -> dict:
    """For each scale of the table: the half-range ``R`` of its symbols ``-R..R`` and their integer frequencies.

    Every symbol gets a frequency of at least 1 and each table sums to
    ``2**precision``; the range covers ten scales on each side (at least
    :data:`MIN_HALF_RANGE`).  Computed once at export, in float64; the
    integers are what files depend on.
    """
    total = 1 << precision
    halves, freqs = [], []
    erfc = np.frompyfunc(math.erfc, 1, 1)
    for s in scale_table():
        r = max(MIN_HALF_RANGE, int(math.ceil(10 * s)))
        k = np.arange(-r, r + 2, dtype=np.float64) - 0.5
        cdf = 0.5 * erfc(-k / (s * math.sqrt(2.0))).astype(np.float64)
        pmf = np.diff(cdf)
        pmf = pmf / pmf.sum()
        counts = np.maximum(1, np.floor(pmf * (total - len(pmf)))).astype(np.int64)
        counts[r] += total - counts.sum()  # the rounding goes to the mode, zero
        halves.append(r)
        freqs.append(counts)
    return {"precision": precision, "half_ranges": np.array(halves, np.int64), "frequencies": freqs}


class GaussianConditional:
    """The codes' entropy model: zero-mean Gaussians of :data:`LEVELS` fixed scales, each with its integer table.

    ``half_ranges`` and ``frequencies`` are what :func:`gaussian_tables`
    made at export (stored with the model).  Symbols are coded grouped by
    scale level: every value of level 0 in raster order, then level 1, ...
    (one model per level, so the range coder switches tables 64 times per
    band rather than once per value).
    """

    def __init__(self, half_ranges, frequencies):
        halves = np.asarray(half_ranges, np.int64)
        flat = np.asarray(frequencies, np.int64)
        bounds = np.concatenate([[0], np.cumsum(2 * halves + 1)])
        if len(halves) != LEVELS or bounds[-1] != len(flat):
            raise CaeError("unreadable hyperprior parameters (Gaussian tables)")
        freqs = [flat[bounds[i] : bounds[i + 1]] for i in range(len(halves))]
        total = 1 << PRECISION
        if any(f.min() < 1 or int(f.sum()) != total for f in freqs):
            raise CaeError("unreadable hyperprior parameters (Gaussian tables must be positive and sum to 2**24)")
        self.half_ranges = halves
        self._probabilities = [f.astype(np.float64) / total for f in freqs]
        self._models = None

    @classmethod
    def from_arrays(cls, params) -> "GaussianConditional":
        return cls(params["gaussian_half_ranges"], params["gaussian_frequencies"])

    @staticmethod
    def arrays(precision: int = PRECISION) -> dict:
        """The integer tables as stored beside a model (``gaussian_half_ranges``, ``gaussian_frequencies``)."""
        tables = gaussian_tables(precision)
        return {"gaussian_half_ranges": tables["half_ranges"], "gaussian_frequencies": np.concatenate(tables["frequencies"])}

    @staticmethod
    def likelihood(values, scale):
        """Training and refinement (TensorFlow): probability of the unit interval around ``values`` under a zero-mean Gaussian of ``scale``."""
        from cae_compress._tf import tf  # the training side only

        v = tf.abs(values)
        c = 1.0 / (scale * math.sqrt(2.0))
        upper = 0.5 * tf.math.erfc(-(0.5 - v) * c)
        lower = 0.5 * tf.math.erfc(-(-0.5 - v) * c)
        return tf.maximum(upper - lower, LIKELIHOOD_BOUND)

    @staticmethod
    def scale_of(log_scale):
        """Training and refinement (TensorFlow): the scale of a predicted log-scale, kept within the table's scales."""
        from cae_compress._tf import tf  # the training side only

        return tf.exp(tf.clip_by_value(log_scale, math.log(SCALE_MIN), math.log(SCALE_MAX)))

    def quantize(self, residual: np.ndarray, index: np.ndarray) -> np.ndarray:
        """The int32 symbols of float residuals (codes minus means): rounded, clamped into each scale's range."""
        limit = self.half_ranges[index]
        return np.clip(np.rint(residual), -limit, limit).astype(np.int32)

    def _models_by_level(self):
        if self._models is None:
            import constriction

            self._models = [constriction.stream.model.Categorical(p, perfect=False) for p in self._probabilities]
        return self._models

    def encode(self, enc, symbols: np.ndarray, index: np.ndarray) -> None:
        """Range-code ``symbols`` with the tables of scale indices ``index`` (same shape) onto ``enc``, level by level."""
        order, counts = _by_level(index)
        chosen = symbols.reshape(-1)[order] + self.half_ranges[index.reshape(-1)[order]]
        models = self._models_by_level()
        start = 0
        for level in np.flatnonzero(counts):
            enc.encode(np.ascontiguousarray(chosen[start : start + counts[level]], np.int32), models[level])
            start += counts[level]

    def decode(self, dec, index: np.ndarray, label: str = "<input>") -> np.ndarray:
        """The int32 symbols of scale indices ``index``, decoded from ``dec`` as :meth:`encode` coded them."""
        order, counts = _by_level(index)
        values = np.empty(order.shape, np.int32)
        models = self._models_by_level()
        start = 0
        try:
            for level in np.flatnonzero(counts):
                stop = start + counts[level]
                values[start:stop] = np.asarray(dec.decode(models[level], int(counts[level])), np.int32) - self.half_ranges[level]
                start = stop
        except Exception as exc:  # constriction raises on a stream that cannot be decoded
            raise CaeError(f"{label}: corrupt entropy-coded payload ({exc})") from None
        out = np.empty(order.shape, np.int32)
        out[order] = values
        return out.reshape(index.shape)


def _by_level(index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the scale indices sorted by level, raster order within a level (a stable sort), and the count of each level.

    The levels (0-63) are sorted as bytes: NumPy's stable sort of bytes is a radix sort, far faster than its sort of int32.
    """
    flat = index.reshape(-1).astype(np.uint8)
    return np.argsort(flat, kind="stable"), np.bincount(flat, minlength=LEVELS)


# ----------------------------------------------------------------- integer network
def _conv_same(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """'same' stride-1 convolution of (H, W, Cin) by (k, k, Cin, Cout), odd k, in float64."""
    k = w.shape[0]
    if k == 1:
        return x @ w[0, 0]
    p = k // 2
    cols = sliding_window_view(np.pad(x, ((p, p), (p, p), (0, 0))), (k, k), axis=(0, 1))  # (H, W, Cin, k, k)
    return np.tensordot(cols, w.transpose(2, 0, 1, 3), axes=([2, 3, 4], [0, 1, 2]))


def _depth_to_space(x: np.ndarray, s: int) -> np.ndarray:
    h, w, c = x.shape
    return x.reshape(h, w, s, s, c // (s * s)).transpose(0, 2, 1, 3, 4).reshape(h * s, w * s, c // (s * s))


def subpixel_kernel(kernel: np.ndarray, stride: int) -> np.ndarray:
    """The kernel of the convolution that, followed by depth-to-space, equals a 'same' transposed one.

    A transposed convolution of stride ``s`` and odd size ``k`` with 'same'
    padding writes output pixel ``s*m + a`` from inputs ``m + u`` with tap
    ``t = a + p - s*u`` (``p = (k - s) // 2``).  For each phase ``(a, b)`` that
    is a small ordinary convolution; all phases together are one convolution
    with ``s*s*out`` channels, which depth-to-space interleaves.
    """
    k = kernel.shape[0]
    c_out, c_in = kernel.shape[2], kernel.shape[3]
    p = (k - stride) // 2
    reach = (k + stride - 1) // stride  # taps each phase can use on each side, at most
    size = 2 * reach + 1
    sub = np.zeros((size, size, c_in, stride * stride * c_out), kernel.dtype)
    for a in range(stride):
        for b in range(stride):
            phase = (a * stride + b) * c_out
            for u in range(-reach, reach + 1):
                ty = a + p - stride * u
                for v in range(-reach, reach + 1):
                    tx = b + p - stride * v
                    if 0 <= ty < k and 0 <= tx < k:
                        sub[u + reach, v + reach, :, phase : phase + c_out] = kernel[ty, tx].T
    used = np.flatnonzero(np.abs(sub).sum(axis=(1, 2, 3)) + np.abs(sub).sum(axis=(0, 2, 3)))
    trim = min(used.min(), size - 1 - used.max()) if used.size else 0
    return sub[trim : size - trim, trim : size - trim]


class IntegerScaleNet:
    """The scale branch as integers: rounded hyper-codes (H, W, N) -> table indices (4H, 4W, M).

    ``layers`` is a list of ``(kernel, bias, upsample)``: integer-valued
    float64 arrays of a stride-1 'same' convolution (a strided transposed
    convolution already rewritten as a convolution followed by
    depth-to-space of ``upsample``).  Kernels have :data:`WEIGHT_BITS`
    fractional bits; activations keep :data:`ACTIVATION_BITS`; the input
    has ``input_bits`` (0: integers, the hyper-codes or decoded symbols);
    the last layer's output, in units of table steps, is rounded to the index.

    A context model composes these: :meth:`features` gives the hidden
    activations (fixed point, :data:`ACTIVATION_BITS`) and :meth:`index` the
    last layer on them, so a context network built with ``input_bits =
    ACTIVATION_BITS`` can take those features beside decoded symbols
    (shifted by :func:`fixed_point`) and still decide every table in integers.
    """

    def __init__(self, layers: list[tuple[np.ndarray, np.ndarray, int]], input_bits: int = 0):
        self.layers = [(np.asarray(k, np.float64), np.asarray(b, np.float64), int(u)) for k, b, u in layers]
        self.input_bits = int(input_bits)
        for k, b, _ in self.layers:
            if not (np.all(k == np.round(k)) and np.all(b == np.round(b))):
                raise CaeError("the integer scale network holds non-integer weights")
            if np.abs(k).max() >= 2**24 or np.abs(b).max() >= 2**40:
                raise CaeError("the integer scale network's weights are out of range")

    def _layer(self, x: np.ndarray, i: int) -> np.ndarray:
        """Layer ``i`` on fixed-point input ``x``: the next activations (ReLU, ACTIVATION_BITS), or the last layer's rounded output."""
        kernel, bias, up = self.layers[i]
        in_bits = self.input_bits if i == 0 else ACTIVATION_BITS
        acc = _conv_same(x, kernel)
        acc += bias  # in place from here on: the same operations, without full-size temporaries
        if up > 1:
            acc = _depth_to_space(acc, up)
        if i < len(self.layers) - 1:
            acc *= 2.0 ** (ACTIVATION_BITS - WEIGHT_BITS - in_bits)
            x = np.floor(acc, out=acc)
            return np.maximum(x, 0.0, out=x)
        acc += 2.0 ** (WEIGHT_BITS + in_bits - 1)
        acc *= 2.0 ** -(WEIGHT_BITS + in_bits)
        return np.floor(acc, out=acc)

    def features(self, z: np.ndarray) -> np.ndarray:
        """The activations before the last layer (float64 holding integers, :data:`ACTIVATION_BITS` fractional bits)."""
        x = np.asarray(z, np.float64)
        for i in range(len(self.layers) - 1):
            x = self._layer(x, i)
        return x

    def index(self, features: np.ndarray) -> np.ndarray:
        """The table indices of :meth:`features`' output: the last layer, rounded and clipped to the table."""
        x = self._layer(np.asarray(features, np.float64), len(self.layers) - 1)
        return np.clip(x, 0, LEVELS - 1, out=x).astype(np.int32)

    def __call__(self, z: np.ndarray) -> np.ndarray:
        if len(self.layers) == 1:
            return self.index(z)
        return self.index(self.features(z))

    @classmethod
    def from_float(cls, layers: list[tuple[np.ndarray, np.ndarray, int]], input_bits: int = 0) -> "IntegerScaleNet":
        """Quantize float layers (ReLU between them, the last giving log-scales) to the integer network.

        The last layer is first rescaled so that it gives ``(log scale -
        log SCALE_MIN) / LOG_STEP``, whose rounding is the table index.
        """
        out = []
        last = len(layers) - 1
        for i, (kernel, bias, up) in enumerate(layers):
            kernel, bias = np.asarray(kernel, np.float64), np.asarray(bias, np.float64)
            if i == last:
                kernel, bias = kernel / LOG_STEP, (bias - math.log(SCALE_MIN)) / LOG_STEP
            bias_bits = WEIGHT_BITS + (input_bits if i == 0 else ACTIVATION_BITS)
            out.append((np.round(kernel * 2.0**WEIGHT_BITS), np.round(bias * 2.0**bias_bits), up))
        return cls(out, input_bits)

    @classmethod
    def from_keras(cls, layers, input_bits: int = 0) -> "IntegerScaleNet":
        """:meth:`from_float` of a chain of Keras layers (those with weights, in order: convolutions, transposed ones of stride
        ``s`` written as a convolution followed by depth-to-space, :func:`subpixel_kernel`), ReLU between them."""
        out = []
        for layer in layers:
            weights = layer.get_weights()
            if not weights:
                continue
            kernel, bias = (np.asarray(v, np.float64) for v in weights)
            if "Transpose" in type(layer).__name__:
                s = layer.strides[0]
                out.append((subpixel_kernel(kernel, s), np.tile(bias, s * s), s))
            else:
                out.append((kernel, bias, 1))
        return cls.from_float(out, input_bits)

    def arrays(self, prefix: str = "scale") -> dict[str, np.ndarray]:
        d = {}
        for i, (k, b, u) in enumerate(self.layers):
            d[f"{prefix}_{i}_kernel"] = k.astype(np.int32)
            d[f"{prefix}_{i}_bias"] = b.astype(np.int64)
            d[f"{prefix}_{i}_upsample"] = np.array(u, np.int32)
        if self.input_bits:
            d[f"{prefix}_input_bits"] = np.array(self.input_bits, np.int32)
        return d

    @classmethod
    def from_arrays(cls, d, prefix: str = "scale") -> "IntegerScaleNet":
        n = len([k for k in d if k.endswith("_kernel") and k.startswith(f"{prefix}_")])
        layers = [(d[f"{prefix}_{i}_kernel"], d[f"{prefix}_{i}_bias"], int(d[f"{prefix}_{i}_upsample"])) for i in range(n)]
        return cls(layers, int(d[f"{prefix}_input_bits"]) if f"{prefix}_input_bits" in d else 0)


def fixed_point(symbols: np.ndarray) -> np.ndarray:
    """Integer symbols as an input of :data:`ACTIVATION_BITS` fractional bits (beside :meth:`IntegerScaleNet.features`)."""
    return np.asarray(symbols, np.float64) * 2.0**ACTIVATION_BITS
