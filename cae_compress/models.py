"""The autoencoders, as Keras 3 models whose encoder and decoder are separate.

Every architecture is a :class:`CAE`: a Keras model holding two functional
sub-models, ``encoder`` (image tile -> code) and ``decoder`` (code -> image
tile).  ``encode``/``decode`` in the codec call them apart; training calls the
whole model.  A CAE saves to and loads from one ``.keras`` file with
:func:`save_model` / :func:`load_model`, architecture and value range included.

Pixel values enter the model in its ``value_range``: [0, 1] for ``dense`` and
``deep``, [-1, 1] for ``single-layer`` (as published).  :func:`to_model_range`
and :func:`from_model_range` convert uint8 pixels both ways.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from cae_compress._tf import tf  # noqa: F401  (quiet import first)
import keras
from keras import layers, ops

from cae_compress.errors import CaeError

DEFAULT_ARCHITECTURE = "dense"
DEFAULT_FILTERS = {"dense": 16, "single-layer": 32, "deep": 32}


# --------------------------------------------------------------------------- model
@keras.saving.register_keras_serializable(package="cae_compress")
class CAE(keras.Model):
    """An autoencoder: ``decoder(encoder(x))``, with what the codec needs to know.

    ``arch`` names the architecture, ``value_range`` is the (low, high) range
    of pixels the model reads and writes, ``loss_scale`` multiplies the mean
    squared error in the training loss (0.5 for the single-layer CAE's MSE/2).
    """

    def __init__(self, encoder, decoder, arch, value_range=(0.0, 1.0), loss_scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.arch = arch
        self.value_range = (float(value_range[0]), float(value_range[1]))
        self.loss_scale = float(loss_scale)

    def call(self, x, training=False):
        return self.decoder(self.encoder(x, training=training), training=training)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Build metrics and optimizer from a local example batch, not a distributed one.

        Keras 3's own version reduces the first distributed batch eagerly, which
        fails under ``MultiWorkerMirroredStrategy`` ("Attempt to convert a value
        (PerReplica...)", keras-team/keras#20585).  A CAE knows its input
        shape, so an example batch of zeros does the same job on every strategy.
        """
        if iterator is not None and self._distribute_strategy is not None:
            x = np.zeros((1, *self.tile_shape), "float32")
            iterator, data_batch = None, (x, x)
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    @property
    def tile_shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of one input tile."""
        return tuple(int(d) for d in self.encoder.input_shape[1:])

    @property
    def code_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.encoder.output_shape[1:])

    @property
    def code_length(self) -> int:
        return int(np.prod(self.code_shape))

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "arch": self.arch,
            "value_range": list(self.value_range),
            "loss_scale": self.loss_scale,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        config["decoder"] = keras.saving.deserialize_keras_object(config["decoder"])
        return cls(**config)


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


def build_model(
    arch: str = DEFAULT_ARCHITECTURE,
    input_shape=(32, 32, 3),
    code_length: int = 128,
    filters: int | None = None,
    l2_penalty: float = 0.0,
    l1_code: float = 0.0,
) -> CAE:
    """Build an untrained CAE of architecture ``arch`` (any registered one, see ``cae_compress.registry``)."""
    from cae_compress import registry

    return registry.get(arch).build(tuple(input_shape), code_length, filters, l2_penalty, l1_code)


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


# ------------------------------------------------------------------------ losses
def reconstruction_loss(loss_scale: float):
    """Per-example mean squared error times ``loss_scale`` (0.5 gives the published MSE/2)."""

    def loss(y_true, y_pred):
        return loss_scale * ops.mean(ops.square(y_true - y_pred), axis=tuple(range(1, len(y_pred.shape))))

    loss.__name__ = "mse_half" if loss_scale == 0.5 else "mse"
    return loss


def pixel_metrics(value_range):
    """Keras metrics on the 0-255 scale: ``mse_255`` and ``psnr`` (mean of per-image PSNR)."""
    lo, hi = value_range
    scale = 255.0 / (hi - lo)

    def mse_255(y_true, y_pred):
        err = (y_true - ops.clip(y_pred, lo, hi)) * scale
        return ops.mean(ops.square(err), axis=tuple(range(1, len(y_pred.shape))))

    def psnr(y_true, y_pred):
        mse = mse_255(y_true, y_pred)
        return 10.0 * ops.log(255.0**2 / ops.maximum(mse, 1e-10)) / np.log(10.0)

    return [keras.metrics.MeanMetricWrapper(mse_255, name="mse_255"), keras.metrics.MeanMetricWrapper(psnr, name="psnr")]


# ----------------------------------------------------------------- saving/loading
def save_model(model: CAE, path: str | Path) -> Path:
    """Save the weights and architecture (no optimizer state) to a ``.keras`` file, atomically."""
    path = Path(path)
    clean = type(model).from_config(model.get_config())
    clean(np.zeros((1, *model.tile_shape), "float32"))  # build
    clean.set_weights(model.get_weights())
    tmp = path.with_name(path.name + ".part.keras")
    clean.save(tmp)
    _deflate(tmp)
    tmp.replace(path)
    return path


def _deflate(path: Path) -> None:
    """Rewrite a ``.keras`` zip with its members deflated (Keras stores them uncompressed)."""
    import zipfile

    with zipfile.ZipFile(path) as src:
        members = [(info.filename, src.read(info)) for info in src.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
        for name, data in members:
            dst.writestr(name, data)


def load_model(path: str | Path) -> CAE:
    """Load a CAE saved by :func:`save_model` (or a run folder holding ``model.keras``)."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.keras"
    if not path.is_file():
        raise CaeError(f"{path}: no such model file")
    import importlib

    from cae_compress import registry

    for module in registry.modules():  # registers every architecture's Keras classes
        importlib.import_module(module)

    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as exc:  # keras raises many kinds for a bad file
        raise CaeError(f"{path}: not a cae model ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
    if not isinstance(model, CAE):
        raise CaeError(f"{path}: a Keras model, but not a cae_compress autoencoder")
    return model


def fingerprint(model: CAE) -> bytes:
    """8 bytes identifying the weights: the first bytes of a SHA-256 over every weight array."""
    h = hashlib.sha256(model.arch.encode())
    for w in model.get_weights():
        a = np.ascontiguousarray(w, dtype="<f4")
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.digest()[:8]
