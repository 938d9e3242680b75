"""The ``shallow`` model: the channel-context model with a two-layer synthesis, a tenth of the default's decode arithmetic.

After Yang & Mandt, "Computationally-efficient neural image compression
with shallow decoders" (ICCV 2023): the analysis, hyperprior and channel
context stay as deep as the default's (``channel_context``), and the
synthesis is two transposed convolutions:

* ``up``: 13x13, stride 8, from the 192 code channels to 24 channels: the
  first 12 go through an inverse GDN, the other 12 are a linear residual
  branch added to them (:class:`ResidualGDN`);
* ``out``: 5x5, stride 2, to RGB.

That is 3.3k multiply-accumulates per pixel as transposed convolutions
(the default's synthesis: 42k), about 11k in the sub-pixel convolutions
LiteRT runs (a 13x13 kernel at stride 8 leaves most taps of each phase's
3x3 window zero).  The synthesis reaches 1.2 code positions, inside the
codec's window margin, so the files, the codec and the entropy model are
the channel-context model's (version 3, latent part ``latent.channel_context``); only
the network that turns codes into pixels differs, and the analysis learns
codes for it (trained jointly: ``tools/gpu_slot.py --arch shallow``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cae_compress._tf import tf  # noqa: F401  (quiet import first)
import keras
from keras import layers, ops

from cae_compress.errors import CaeError
from cae_compress.models.channel_context import TOP_LAMBDAS, ChannelContextCAE, build_channel_context_model, load_contexts
from cae_compress.models.hyperprior import LAMBDAS, M, N, S, widths_from_flags

HIDDEN = 12  # channels between the two layers (Yang & Mandt's two-layer synthesis)
KERNELS = (13, 5)
STRIDES = (8, 2)


@keras.saving.register_keras_serializable(package="cae_compress")
class ResidualGDN(keras.layers.Layer):
    """``igdn(x[..., :c]) + x[..., c:]`` for an input of ``2c`` channels: a non-linear and a linear branch of one convolution.

    The inverse GDN's ``x^2 . gamma`` is a 1x1 convolution (as the export
    writes GDN, ``models.export._gdn_as_convolutions``), so the layer
    converts to LiteRT as it is.
    """

    def build(self, input_shape):
        c = int(input_shape[-1]) // 2
        self.beta = self.add_weight(name="beta", shape=(c,), initializer="ones")
        self.gamma = self.add_weight(name="gamma", shape=(c, c), initializer=keras.initializers.Identity(0.1))

    def call(self, x):
        c = self.beta.shape[0]
        a, b = x[..., :c], x[..., c:]
        norm = ops.sqrt(ops.conv(ops.square(a), ops.square(self.gamma)[None, None], padding="valid") + ops.square(self.beta) + 1e-6)
        return a * norm + b

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], int(input_shape[-1]) // 2)


def _two_layer_synthesis(m: int = M, hidden: int = HIDDEN, name: str = "decoder"):
    inp = keras.Input((None, None, m), name="code")
    x = layers.Conv2DTranspose(2 * hidden, KERNELS[0], strides=STRIDES[0], padding="same", name="up")(inp)
    x = ResidualGDN(name="igdn")(x)
    out = layers.Conv2DTranspose(3, KERNELS[1], strides=STRIDES[1], padding="same", name="out")(x)
    return keras.Model(inp, out, name=name)


def build_shallow_model(n: int = N, m: int = M, s: int = S, lambdas=LAMBDAS + TOP_LAMBDAS, hidden: int = HIDDEN) -> ChannelContextCAE:
    """An untrained ``shallow`` model: the channel-context model's analysis and entropy model (widths ``n``, ``m``, ``s``), the two-layer synthesis."""
    model = build_channel_context_model(n, m, s, lambdas=lambdas)
    shallow = ChannelContextCAE(model.encoder, _two_layer_synthesis(int(model.encoder.output_shape[-1]), hidden), model.hyper_encoder,
                                model.hyper_mean, model.hyper_scale, model.prior, model.mean_contexts, model.scale_contexts,
                                slices=model.slices, arch="shallow", lambdas=tuple(lambdas), name="shallow")
    shallow(np.zeros((1, 64, 64, 3), "float32"))
    return shallow


@dataclass(frozen=True)
class ShallowOptions:
    """The ``shallow`` model's own build options (``registry.parse_options``: ``hidden=16``)."""

    hidden: int = HIDDEN  # channels between the synthesis' two layers (each branch of ``up``)

    def check(self) -> None:
        if self.hidden <= 0:
            raise CaeError(f"hidden must be positive, got {self.hidden}")


def build_from_flags(input_shape, code_length, filters, l2_penalty, l1_code, options: ShallowOptions = ShallowOptions()) -> ChannelContextCAE:
    """The registry's builder (``cae train`` flags, as the channel-context model's: ``--filters`` the analysis width, ``--code-length`` the code channels)."""
    return build_shallow_model(*widths_from_flags(input_shape, code_length, filters, arch="shallow"), lambdas=LAMBDAS, hidden=options.hidden)


def load_torch_export(model: ChannelContextCAE, folder) -> None:
    """The weights of a ``tools/gpu_slot.py --arch shallow`` run (unpacked by ``tools/import_gpu_run.py``) into ``model``.

    The mirror's two branches (``base`` and ``res``, 12 channels each) are the two halves of ``up``'s 24.
    """
    import tempfile

    from cae_compress.models.hyperprior import load_torch_export as load_hyperprior

    folder = Path(folder)
    seen = load_contexts(model, folder / "context.npz")
    with np.load(folder / "synthesis.npz") as f:
        syn = {k: f[k].astype(np.float32) for k in f.files}
    up = model.decoder.get_layer("up")
    up.kernel.assign(np.concatenate([syn["base/kernel"], syn["res/kernel"]], axis=2))  # Keras transposed kernels: (kh, kw, out, in)
    up.bias.assign(np.concatenate([syn["base/bias"], syn["res/bias"]]))
    model.decoder.get_layer("igdn").beta.assign(syn["igdn/beta"])
    model.decoder.get_layer("igdn").gamma.assign(syn["igdn/gamma"])
    model.decoder.get_layer("out").kernel.assign(syn["out/kernel"])
    model.decoder.get_layer("out").bias.assign(syn["out/bias"])
    seen += 6  # up, igdn and out above
    # the analysis and hyperprior as the hyperprior's loader reads them, the synthesis group reduced to its inverse gains
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("analysis", "hyper_analysis", "hyper_synthesis"):
            (Path(tmp) / f"{name}.npz").symlink_to((folder / f"{name}.npz").resolve())
        np.savez(Path(tmp) / "synthesis.npz", inverse_gain=syn["inverse_gain"])
        load_hyperprior(model, tmp, others=seen)


def from_torch_export(folder) -> ChannelContextCAE:
    """The Keras model of a ``shallow`` run's export, with the run's rate anchors."""
    with np.load(Path(folder) / "context.npz") as f:
        lambdas = tuple(float(v) for v in f["lambdas"])
    model = build_shallow_model(lambdas=lambdas)
    load_torch_export(model, folder)
    return model
