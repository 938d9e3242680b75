"""The autoencoders, as Keras 3 models whose encoder and decoder are separate.

Every architecture is a :class:`CAE`: a Keras model holding two functional
sub-models, ``encoder`` (image tile -> code) and ``decoder`` (code -> image
tile).  ``encode``/``decode`` in the codec call them apart; training calls the
whole model.  A CAE saves to and loads from one ``.keras`` file with
:func:`save_model` / :func:`load_model`, architecture and value range included.

Pixel values enter the model in its ``value_range``: [0, 1] for ``dense`` and
``deep``, [-1, 1] for ``single-layer`` (as published);
``cae_compress.io.pixels.to_model_range`` and ``from_model_range`` convert
uint8 pixels both ways.

What export and training need of a model they ask the model, whatever its
class: :attr:`CAE.entropy_file` and :meth:`CAE.entropy_params` (what
``models.export`` stores of its entropy model) and :meth:`CAE.evaluate_tiles`
(``training.train.evaluate``).  A new architecture overrides them; nothing
outside its module checks its type.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import zipfile
from pathlib import Path

import numpy as np

from cae_compress._tf import tf  # noqa: F401  (quiet import first)
import keras
from keras import ops

from cae_compress import registry
from cae_compress.errors import CaeError
from cae_compress.evaluation.metrics import reconstruction_metrics
from cae_compress.io.files import atomic_write
from cae_compress.io.pixels import from_model_range, to_model_range

DEFAULT_ARCHITECTURE = "dense"


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

    # ------------------------------------------------------ export, evaluation
    entropy_file: str | None = None  # the entropy model's arrays go to NAME.<entropy_file>.npz; None: inline in NAME.lite.json

    def entropy_params(self):
        """What the runtime needs of this model's entropy model, made from its weights (``models.export.describe``):
        JSON-able tables (inline in ``lite.json``), a dict of arrays (when :attr:`entropy_file` names their ``.npz``), or None."""
        return None

    def evaluate_tiles(self, tiles: np.ndarray, batch_size: int = 256) -> dict:
        """Loss and pixel metrics on uint8 ``tiles``, reconstructions rounded to uint8 (``training.train.evaluate``)."""
        x = to_model_range(tiles, self.value_range)
        recon = np.concatenate([self(x[i : i + batch_size], training=False).numpy() for i in range(0, len(x), batch_size)])
        loss = self.loss_scale * float(np.mean(np.square(recon - x)))
        return {"loss": loss, **reconstruction_metrics(tiles, from_model_range(recon, self.value_range)), "tiles": int(len(tiles))}

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


class RateDistortionCAE(CAE):
    """A :class:`CAE` trained on distortion + lambda * rate by its own train step (the entropy-coded models).

    A subclass gives ``_rd_terms(x, training)``: a dict with ``loss`` and
    ``bpp``, plus the pixel metrics of :meth:`_pixel_terms`.
    """

    EXAMPLE_SIDE = 32  # side of the example batch that builds the model before training

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._trackers = {k: keras.metrics.Mean(name=k) for k in ("loss", "mse_255", "psnr", "bpp")}

    @staticmethod
    def _pixel_terms(x, x_hat) -> dict:
        """Mean MSE (0-255 scale) and mean per-image PSNR of the reconstruction clipped to [0, 1]."""
        clipped = ops.mean(ops.square(x - ops.clip(x_hat, 0.0, 1.0)), axis=(1, 2, 3)) * 255.0**2
        psnr = ops.mean(10.0 * ops.log(255.0**2 / ops.maximum(clipped, 1e-10)) / np.log(10.0))
        return {"mse_255": ops.mean(clipped), "psnr": psnr}

    def _record(self, values):
        for k, v in values.items():
            self._trackers[k].update_state(v)
        return {k: t.result() for k, t in self._trackers.items()}

    def train_step(self, data):
        x = data[0] if isinstance(data, (tuple, list)) else data
        with tf.GradientTape() as tape:
            values = self._rd_terms(x, training=True)
        weights = self.trainable_weights
        grads = tape.gradient(values["loss"], weights)
        self.optimizer.apply_gradients(zip(grads, weights))
        return self._record(values)

    def test_step(self, data):
        x = data[0] if isinstance(data, (tuple, list)) else data
        return self._record(self._rd_terms(x, training=False))

    @property
    def metrics(self):
        return list(self._trackers.values())

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        x = np.zeros((1, self.EXAMPLE_SIDE, self.EXAMPLE_SIDE, int(self.encoder.input_shape[-1])), "float32")
        return keras.Model._maybe_symbolic_build(self, iterator=None, data_batch=(x, x))


def build_model(
    arch: str = DEFAULT_ARCHITECTURE,
    input_shape=(32, 32, 3),
    code_length: int = 128,
    filters: int | None = None,
    l2_penalty: float = 0.0,
    l1_code: float = 0.0,
    options=None,
) -> CAE:
    """Build an untrained CAE of architecture ``arch`` (any registered one, see ``cae_compress.registry``).

    ``options``: the architecture's own options (``registry.parse_options``), for an architecture that has them.
    """
    return registry.get(arch).build(tuple(input_shape), code_length, filters, l2_penalty, l1_code, options=options)


# ------------------------------------------------------------------------ losses
def reconstruction_loss(loss_scale: float, kind: str = "mse", value_range=(0.0, 1.0)):
    """The per-example training loss of a fixed-length code model.

    ``mse``: mean squared error times ``loss_scale`` (0.5 gives the published
    MSE/2).  ``psnr``: minus the image's PSNR in dB (pixels on the model's
    ``value_range``), so that the batch mean is minus the mean per-image PSNR,
    the number ``cae bench`` reports: it weighs an error on a smooth image
    more than the same error on a busy one.
    """
    peak = float(value_range[1] - value_range[0]) ** 2

    def mse(y_true, y_pred):
        return ops.mean(ops.square(y_true - y_pred), axis=tuple(range(1, len(y_pred.shape))))

    if kind == "psnr":
        def loss(y_true, y_pred):
            return (10.0 / math.log(10.0)) * ops.log(mse(y_true, y_pred) / peak + 1e-10)

        loss.__name__ = "neg_psnr"
        return loss
    if kind != "mse":
        raise ValueError(f"unknown loss {kind!r}")

    def loss(y_true, y_pred):
        return loss_scale * mse(y_true, y_pred)

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

    def write(tmp: Path) -> None:
        clean.save(tmp)
        _deflate(tmp)

    return atomic_write(path, write=write)


def _deflate(path: Path) -> None:
    """Rewrite a ``.keras`` zip with its members deflated (Keras stores them uncompressed)."""
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
