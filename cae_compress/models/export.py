"""Export to LiteRT: the TensorFlow side of the light inference path (``cae_compress.runtime.litert`` runs the files).

:func:`export_lite` converts a trained model's networks to ``.tflite`` files
beside its ``.keras`` file and writes ``NAME.lite.json`` (architecture,
shapes, fingerprint, and the integer entropy tables that every backend then
reads: :func:`describe`, also what the TensorFlow backend runs with);
transposed convolutions are rewritten as ordinary ones on the way (LiteRT
runs them slowly).  The files' names: ``cae_compress.runtime.files``.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np

from cae_compress._tf import tf  # quiet import first: this module converts Keras models
import keras

from cae_compress import registry
from cae_compress._quiet import quiet_stderr
from cae_compress.entropy_models.gaussian import subpixel_kernel as _subpixel_kernel  # also the integer scale networks'
from cae_compress.errors import CaeError
from cae_compress.io.files import atomic_write
from cae_compress.models import fingerprint
from cae_compress.models.layers import GDN
from cae_compress.runtime.files import ModelFiles


# A layer of stride 4 or more whose one sub-pixel kernel would do more than this many multiplications per useful
# tap is written by phase groups (the shallow synthesis' 13x13 stride-8 layer: 3.4, and its LiteRT synthesis
# 1.8x faster, measured in benchmarks/speed.py); stride-2 layers (5x5: 1.44) keep the one convolution they always had.
GROUPED_WASTE = 2.0


def _phase_taps(k: int, stride: int) -> list[tuple[range, list[int]]]:
    """The phases of one axis grouped by the input offsets they read: ``[(offsets, phases), ...]`` (see :func:`_subpixel_kernel`)."""
    p, reach = (k - stride) // 2, (k + stride - 1) // stride
    groups: dict[tuple[int, ...], list[int]] = {}
    for a in range(stride):
        groups.setdefault(tuple(u for u in range(-reach, reach + 1) if 0 <= a + p - stride * u < k), []).append(a)
    return [(range(us[0], us[-1] + 1), phases) for us, phases in groups.items()]


def _subpixel_waste(k: int, stride: int) -> float:
    """Multiplications of the one sub-pixel convolution per useful tap (1.44 for a 5x5 stride-2 layer, 3.4 for 13x13 stride 8)."""
    size = _subpixel_kernel(np.ones((k, k, 1, 1), np.float32), stride).shape[0]
    return size * size * stride * stride / (k * k)


def _grouped_phases(x, kernel: np.ndarray, bias: list, stride: int, pending: list):
    """A strided 'same' transposed convolution as one small convolution per group of phases that read the same
    input offsets (the taps each phase really has), concatenated and put in depth-to-space's channel order:
    the multiplications of the transposed convolution itself, where one sub-pixel convolution over the
    union of the offsets multiplies mostly zeros for large strides (a 13x13 stride-8 layer: 169 taps of 576)."""
    k, c_out = kernel.shape[0], kernel.shape[2]
    p, reach = (k - stride) // 2, (k + stride - 1) // stride
    groups = _phase_taps(k, stride)
    padded = keras.layers.ZeroPadding2D(reach)(x)
    parts, order = [], []
    for rows, row_phases in groups:
        for cols, col_phases in groups:
            top, left = reach + rows.start, reach + cols.start
            window = keras.layers.Cropping2D(((top, 2 * reach - top - len(rows) + 1), (left, 2 * reach - left - len(cols) + 1)))(padded)
            weights = np.zeros((len(rows), len(cols), kernel.shape[3], len(row_phases) * len(col_phases) * c_out), kernel.dtype)
            for i, a in enumerate(row_phases):
                for j, b in enumerate(col_phases):
                    channel = (i * len(col_phases) + j) * c_out
                    order.extend(range((a * stride + b) * c_out, (a * stride + b + 1) * c_out))
                    for iu, u in enumerate(rows):
                        for iv, v in enumerate(cols):
                            ty, tx = a + p - stride * u, b + p - stride * v
                            if 0 <= ty < k and 0 <= tx < k:
                                weights[iu, iv, :, channel : channel + c_out] = kernel[ty, tx].T
            conv = keras.layers.Conv2D(weights.shape[-1], weights.shape[:2], padding="valid", use_bias=bool(bias))
            parts.append(conv(window))
            pending.append((conv, [weights, *[np.tile(b, len(row_phases) * len(col_phases)) for b in bias]]))
    x = keras.layers.Concatenate()(parts)
    inverse = np.argsort(np.asarray(order))  # depth-to-space's channel c is the concatenation's inverse[c]
    return keras.layers.Lambda(lambda t, idx=inverse: tf.gather(t, idx, axis=-1))(x)


def _without_transposed_convolutions(model):
    """The same function with each ``Conv2DTranspose`` written as ordinary convolutions.

    LiteRT runs ``TRANSPOSE_CONV`` slowly (measured: docs/speed.md).  A stride-1 transposed convolution is a
    convolution with the kernel flipped spatially and its channel axes swapped,
    over the input padded by ``k - 1`` ('valid') or as is ('same', odd ``k``);
    a strided 'same' one is a convolution followed by depth-to-space
    (:func:`_subpixel_kernel`).  Only chains of layers (every architecture
    here) are rewritten.
    """
    def convertible(layer):
        if not isinstance(layer, keras.layers.Conv2DTranspose) or tuple(layer.dilation_rate) != (1, 1):
            return False
        if tuple(layer.strides) == (1, 1):
            return layer.padding == "valid" or all(k % 2 for k in layer.kernel_size)
        s = layer.strides[0]
        return layer.padding == "same" and tuple(layer.strides) == (s, s) and layer.kernel_size[0] == layer.kernel_size[1] >= s

    if not any(convertible(layer) for layer in model.layers):
        return model
    x = inputs = keras.Input(model.input_shape[1:])
    pending = []
    for layer in model.layers[1:]:
        if not convertible(layer):
            x = layer(x)
            continue
        kernel, *bias = layer.get_weights()  # kernel: (kh, kw, out, in)
        s = layer.strides[0]
        if s == 1:
            kh, kw = layer.kernel_size
            if layer.padding == "valid":
                x = keras.layers.ZeroPadding2D(((kh - 1, kh - 1), (kw - 1, kw - 1)))(x)
            conv = keras.layers.Conv2D(layer.filters, layer.kernel_size, padding=layer.padding, activation=layer.activation, use_bias=layer.use_bias)
            x = conv(x)
            pending.append((conv, [np.transpose(kernel[::-1, ::-1], (0, 1, 3, 2)), *bias]))
            continue
        if s >= 4 and _subpixel_waste(layer.kernel_size[0], s) > GROUPED_WASTE:
            x = _grouped_phases(x, kernel, bias, s, pending)
        else:
            sub = _subpixel_kernel(kernel, s)
            conv = keras.layers.Conv2D(sub.shape[-1], sub.shape[:2], padding="same", use_bias=layer.use_bias)
            x = conv(x)
            pending.append((conv, [sub, *[np.tile(b, s * s) for b in bias]]))
        x = keras.layers.Lambda(lambda t, s=s: tf.nn.depth_to_space(t, s))(x)
        if layer.activation is not None and layer.activation is not keras.activations.linear:
            x = keras.layers.Activation(layer.activation)(x)
    for conv, weights in pending:
        conv.set_weights(weights)
    return keras.Model(inputs, x)


def _gdn_as_convolutions(model):
    """The same function with each GDN's matrix product written as a 1x1 convolution.

    Keras exports ``x^2 @ gamma`` as reshapes around a fully connected op,
    with shapes computed at run time, which splits the graph into several
    XNNPACK partitions (and keeps it off XNNPACK's int8 kernels) and makes
    the first call at each shape slow (docs/speed.md).  Here ``norm = relu(conv1x1(x^2)) + beta``:
    the ReLU changes nothing (a sum of squares times squares), but it keeps
    the converter from folding ``beta`` into the convolution's bias, so the
    sums are added in the same order as the fully connected op and its ADD:
    the float graph gives the old one's outputs bit for bit.
    """
    if not any(isinstance(layer, GDN) for layer in model.layers):
        return model
    x = inputs = keras.Input(model.input_shape[1:])
    pending = []
    for layer in model.layers[1:]:
        if not isinstance(layer, GDN):
            x = layer(x)
            continue
        beta, gamma = (np.asarray(w, np.float32) for w in layer.get_weights())
        conv = keras.layers.Conv2D(gamma.shape[1], 1, use_bias=False, activation="relu")
        pending.append((conv, [np.square(gamma)[None, None]]))
        offset = np.square(beta) + np.float32(GDN.FLOOR)
        norm = keras.layers.Lambda(lambda t, b=offset: t + b)(conv(keras.layers.Lambda(tf.square)(x)))
        x = keras.layers.Multiply()([x, keras.layers.Lambda(tf.sqrt if layer.inverse else tf.math.rsqrt)(norm)])
    for conv, weights in pending:
        conv.set_weights(weights)
    return keras.Model(inputs, x)


def _split(model, after: str):
    """A chain of layers cut after the layer named ``after``: (head, tail), two models whose composition is ``model``."""
    names = [layer.name for layer in model.layers]
    if after not in names:
        raise ValueError(f"no layer {after!r} in {model.name}")
    cut = names.index(after) + 1
    x = head_in = keras.Input(model.input_shape[1:])
    for layer in model.layers[1:cut]:
        x = layer(x)
    head = keras.Model(head_in, x)
    x = tail_in = keras.Input(head.output_shape[1:])
    for layer in model.layers[cut:]:
        x = layer(x)
    return head, keras.Model(tail_in, x)


def _convert(model, int8: bool = False) -> bytes:
    """LiteRT bytes of a Keras model: float32 arithmetic, or int8 (weights per channel, activations quantized per call)."""
    half = not int8 and _float16_exact(model)
    converter = tf.lite.TFLiteConverter.from_keras_model(_gdn_as_convolutions(_without_transposed_convolutions(model)))
    if int8:
        # dynamic-range quantization: XNNPACK runs these convolutions on int8 (per-channel weights, each input
        # quantized with its own range when it comes); several times faster than float32 on CPUs with int8 dot products
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif half:
        # weights stored as float16 (half the file) and widened to float32 at load: the same numbers as the
        # Keras model, whose weights are float16 values already (see hyperprior.round_weights_to_float16),
        # but for GDN's squared parameters, rounded to float16 here (the two paths agree within a grey level)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    with quiet_stderr(), contextlib.redirect_stdout(io.StringIO()):  # the converter prints its plan
        return converter.convert()


def describe(cae, files: ModelFiles) -> tuple[dict, object]:
    """What ``NAME.lite.json`` says of ``cae`` (architecture, shapes, value range, fingerprint) and its entropy model's tables.

    The tables are those already exported for these weights when there are
    any (re-exporting on another machine must not change them), else made
    now by the model (``cae.entropy_params()``: a factorized model's
    per-channel tables, a hyperprior's arrays with its latent part's, none
    for a dense-code model).
    """
    meta = {
        "arch": cae.arch,
        "tile_shape": list(cae.tile_shape),
        "code_shape": list(cae.code_shape),
        "value_range": list(cae.value_range),
        "fingerprint": fingerprint(cae).hex(),
    }
    if hasattr(cae, "default_quality"):  # a model with a continuous quality: the one cae encode uses without -q
        meta["default_quality"] = cae.default_quality
    exported = _existing(files, meta["fingerprint"])
    if cae.entropy_file is not None:  # arrays in NAME.<entropy_file>.npz
        entropy = files.entropy() if exported is not None and files.npz(cae.entropy_file).is_file() else cae.entropy_params()
    else:  # tables inline in NAME.lite.json, or none
        entropy = exported.get("entropy") if exported is not None else cae.entropy_params()
    return meta, entropy


def export_lite(cae, keras_path: str | Path) -> list[Path]:
    """Convert ``cae``'s networks to LiteRT files beside ``keras_path`` and describe them in ``NAME.lite.json``.

    The networks are those its architecture runs (``registry``: its codec's
    and its latent part's ``networks``).  A model with an ``int8_head`` (network -> last layer of
    its int8 part, e.g. the hyperprior's analysis) gets that network as two
    files: the head quantized to int8 and the rest in float, run one after
    the other (``NAME.lite.json`` lists them under ``parts``).
    """
    files = ModelFiles(keras_path)
    meta, entropy = describe(cae, files)
    int8_head = getattr(cae, "int8_head", {})
    written, parts = [], {}
    for name in registry.get(cae.arch).networks(lambda n: getattr(cae, n, None) is not None):
        sub, path = getattr(cae, name), files.tflite(name)
        if name in int8_head:
            head, tail = _split(sub, int8_head[name])
            written += [atomic_write(path, _convert(head, int8=True)), atomic_write(files.tail(name), _convert(tail))]
            parts[name] = [path.name, files.tail(name).name]
        else:
            written.append(atomic_write(path, _convert(sub)))
    if parts:
        meta["parts"] = parts
    if cae.entropy_file is not None:  # made once here (kept when these weights have them already), used by every backend
        path = files.npz(cae.entropy_file)
        if _existing(files, meta["fingerprint"]) is None or not path.is_file():
            written.append(atomic_write(path, write=lambda tmp: np.savez_compressed(tmp, **entropy)))
        meta["entropy"] = f"{cae.entropy_file}.npz"
    elif entropy is not None:
        meta["entropy"] = entropy
    written.append(atomic_write(files.lite_json, (json.dumps(meta, indent=2) + "\n").encode()))
    return written


def _float16_exact(model) -> bool:
    """Whether every weight of ``model`` is a float16 value, so storing it as float16 loses nothing."""
    return all(np.array_equal(w, w.astype(np.float16).astype(w.dtype)) for w in model.get_weights())


def _existing(files: ModelFiles, fingerprint: str) -> dict | None:
    """The description already exported for these weights, if any (read once per ``files``)."""
    try:
        meta = files.meta()
    except CaeError:
        return None
    return meta if meta.get("fingerprint") == fingerprint else None
