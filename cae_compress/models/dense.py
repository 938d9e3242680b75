"""The dense-code family: ``dense``, ``single-layer`` and ``deep``, fixed-length float codes per tile (``.cae`` version 1)."""

from __future__ import annotations

import numpy as np

from cae_compress._tf import tf  # noqa: F401  (quiet import first)
import keras
from keras import layers

from cae_compress.errors import CaeError
from cae_compress.models import CAE

DEFAULT_FILTERS = {"dense": 16, "single-layer": 32, "deep": 32}


# ------------------------------------------------------------------ architectures
def _l2(penalty: float):
    return keras.regularizers.L2(penalty) if penalty > 0 else None


def _code_layer(code_length, reg, l1_code):
    """The dense code: linear, with the optional L1 sparsity penalty on its output."""
    return layers.Dense(
        code_length,
        kernel_regularizer=reg,
        activity_regularizer=keras.regularizers.L1(l1_code) if l1_code > 0 else None,
        name="code",
    )


def _dense(input_shape, code_length, filters, l2_penalty, l1_code):
    """Conv 3x3 (valid) -> flatten -> Dense(code) | Dense((H-2)(W-2)C) -> reshape -> ConvT(C, 3x3)."""
    h, w, c = input_shape
    reg = _l2(l2_penalty)
    inp = keras.Input(input_shape, name="tile")
    x = layers.Conv2D(filters, 3, padding="valid", activation="relu", kernel_regularizer=reg, name="conv")(inp)
    x = layers.Flatten()(x)
    code = _code_layer(code_length, reg, l1_code)(x)
    encoder = keras.Model(inp, code, name="encoder")

    cin = keras.Input((code_length,), name="code")
    y = layers.Dense((h - 2) * (w - 2) * c, activation="relu", kernel_regularizer=reg, name="expand")(cin)
    y = layers.Reshape((h - 2, w - 2, c))(y)
    out = layers.Conv2DTranspose(c, 3, padding="valid", activation="sigmoid", kernel_regularizer=reg, name="deconv")(y)
    decoder = keras.Model(cin, out, name="decoder")
    return encoder, decoder, (0.0, 1.0), 1.0


def _single_layer(input_shape, code_length, filters, l2_penalty, l1_code):
    """Zero-pad 2 -> Conv 3x3xF tanh (valid) | Conv 3x3xC tanh (valid); inputs in [-1, 1]; loss MSE/2.

    The L2 penalty applies to the encoding convolution only, as published.
    The code is the whole activation map, (H+2)x(W+2)xF values: larger than
    the input, so this model is for studying filters, not for compressing.
    """
    h, w, c = input_shape
    inp = keras.Input(input_shape, name="tile")
    x = layers.ZeroPadding2D(2)(inp)
    code = layers.Conv2D(filters, 3, padding="valid", activation="tanh", kernel_regularizer=_l2(l2_penalty), name="conv")(x)
    encoder = keras.Model(inp, code, name="encoder")
    cin = keras.Input((h + 2, w + 2, filters), name="code")
    out = layers.Conv2D(c, 3, padding="valid", activation="tanh", name="deconv")(cin)
    decoder = keras.Model(cin, out, name="decoder")
    return encoder, decoder, (-1.0, 1.0), 0.5


def _deep(input_shape, code_length, filters, l2_penalty, l1_code):
    """Four convolutions (two of stride 2, GELU) -> Dense(code), and the mirror image back."""
    h, w, c = input_shape
    if h % 4 or w % 4:
        raise CaeError(f"the deep model needs a tile size divisible by 4, got {h}x{w}")
    reg = _l2(l2_penalty)
    f, f2 = filters, 2 * filters

    def conv(n, stride=1, act="gelu", name=None):
        return layers.Conv2D(n, 3, strides=stride, padding="same", activation=act, kernel_regularizer=reg, name=name)

    inp = keras.Input(input_shape, name="tile")
    x = conv(f)(inp)
    x = conv(f2, 2)(x)
    x = conv(f2, 2)(x)
    x = conv(f)(x)
    x = layers.Flatten()(x)
    code = _code_layer(code_length, reg, l1_code)(x)
    encoder = keras.Model(inp, code, name="encoder")

    cin = keras.Input((code_length,), name="code")
    y = layers.Dense((h // 4) * (w // 4) * f, activation="gelu", kernel_regularizer=reg)(cin)
    y = layers.Reshape((h // 4, w // 4, f))(y)
    y = conv(f2)(y)
    y = layers.Conv2DTranspose(f2, 3, strides=2, padding="same", activation="gelu", kernel_regularizer=reg)(y)
    y = layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation="gelu", kernel_regularizer=reg)(y)
    out = conv(c, act="sigmoid", name="deconv")(y)
    decoder = keras.Model(cin, out, name="decoder")
    return encoder, decoder, (0.0, 1.0), 1.0


_BUILDERS = {"dense": _dense, "single-layer": _single_layer, "deep": _deep}


def _build_dense_family(arch, input_shape, code_length, filters, l2_penalty, l1_code) -> CAE:
    if code_length <= 0:
        raise CaeError(f"--code-length must be positive, got {code_length}")
    if filters is None:
        filters = DEFAULT_FILTERS[arch]
    if filters <= 0:
        raise CaeError(f"--filters must be positive, got {filters}")
    if l2_penalty < 0 or l1_code < 0:
        raise CaeError("--l2-penalty and --l1-code must not be negative")
    h, w, c = input_shape
    if h < 3 or w < 3:
        raise CaeError(f"tiles of {h}x{w} are too small: the models need at least 3x3")
    encoder, decoder, value_range, loss_scale = _BUILDERS[arch](tuple(input_shape), code_length, filters, l2_penalty, l1_code)
    model = CAE(encoder, decoder, arch=arch, value_range=value_range, loss_scale=loss_scale, name=arch.replace("-", "_"))
    model(np.zeros((1, *input_shape), "float32"))  # build
    return model


def build_dense(*args):
    return _build_dense_family("dense", *args)


def build_single_layer(*args):
    return _build_dense_family("single-layer", *args)


def build_deep(*args):
    return _build_dense_family("deep", *args)
