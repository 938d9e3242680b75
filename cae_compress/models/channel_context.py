"""The ``channel-context`` model: the mean-scale hyperprior with a channel-conditional context (Minnen & Singh 2020).

The codes' channels are coded in :data:`SLICES` slices, one after the
other; each slice's means and scales are predicted from the hyper-codes
*and* from the slices already decoded, which is what lets a context model
spend fewer bits than a mean-scale one.  Built for a CPU decoder and for
files that decode the same everywhere:

* the **means** of slice ``i`` are the hyperprior's means plus a small
  float network (``mean_context_i``: a 3x3 and a 1x1 convolution) of the
  decoded codes of the slices before it; a mean that differs by 1e-6 across
  machines cannot change a symbol's table;
* the **scales** of slice ``i`` come from an integer network at inference
  (``cae_compress.entropy_models.gaussian.IntegerScaleNet`` with
  ``input_bits``): two 1x1 convolutions (``scale_context_i``) of the
  hyperprior scale branch's hidden features beside the *integer symbols* of
  the slices before it, so every table is decided in integers; slice 0
  keeps the hyperprior's scales.

:func:`warm_start` starts one from a trained hyperprior so that it codes
exactly as the hyperprior does (mean contexts zero, scale contexts passing
the features through to the hyperprior's last scale layer), and training
moves on from there.

Everything else (transforms, gains, hyper-codes, banding, the file) is the
hyperprior's.  This module holds the Keras networks; the latent part
``cae_compress.latent.channel_context`` holds what they mean (the slices'
likelihood in training, the integer arrays at export, the coding at run
time), and the registry composes it with the hyperprior codec.
Training minimises the same loss, the contexts seeing the decoded
(straight-through rounded) codes of the slices before; ``--effort``
refines through the same likelihood.
"""

from __future__ import annotations

import numpy as np

from cae_compress._tf import tf  # noqa: F401  (quiet import first)
import keras
from keras import layers

from cae_compress.latent.channel_context import SLICES, slice_bounds  # the slices, as the latent part codes them
from cae_compress.models.hyperprior import LAMBDAS, M, N, S, HyperpriorCAE, HyperpriorOptions, build_hyperprior_model, widths_from_flags

TOP_LAMBDAS = (0.0932, 0.18, 0.36)  # rate anchors above the hyperprior's (CompressAI's top two and one more), for qualities up to ~2 bpp
CONTEXT_WIDTH = 64  # hidden width of the context networks


def _mean_context(inputs: int, width: int, out: int, i: int):
    inp = keras.Input((None, None, inputs), name="decoded")
    x = layers.Conv2D(width, 3, padding="same", activation="relu", name=f"mean_context_{i}_0")(inp)
    y = layers.Conv2D(out, 1, name=f"mean_context_{i}_1")(x)
    return keras.Model(inp, y, name=f"mean_context_{i}")


def _scale_context(inputs: int, width: int, out: int, i: int):
    inp = keras.Input((None, None, inputs), name="features_and_symbols")
    x = layers.Conv2D(width, 1, activation="relu", name=f"scale_context_{i}_0")(inp)
    y = layers.Conv2D(out, 1, name=f"scale_context_{i}_1")(x)
    return keras.Model(inp, y, name=f"scale_context_{i}")


@keras.saving.register_keras_serializable(package="cae_compress")
class ChannelContextCAE(HyperpriorCAE):
    """A :class:`HyperpriorCAE` whose codes' means and scales also depend on the slices of channels decoded before."""

    def __init__(self, encoder, decoder, hyper_encoder=None, hyper_mean=None, hyper_scale=None, prior=None, mean_contexts=None,
                 scale_contexts=None, slices=SLICES, arch="channel-context", **kwargs):
        super().__init__(encoder, decoder, hyper_encoder, hyper_mean, hyper_scale, prior, arch=arch, **kwargs)
        m = int(encoder.output_shape[-1])
        width = int(self.hyper_scale.layers[-1].input.shape[-1])  # the scale branch's hidden width
        self.slices = int(slices)
        bounds = slice_bounds(m, self.slices)
        self.mean_contexts = list(mean_contexts) if mean_contexts is not None else [
            _mean_context(bounds[i][0], CONTEXT_WIDTH, b - a, i) for i, (a, b) in enumerate(bounds) if i > 0]
        self.scale_contexts = list(scale_contexts) if scale_contexts is not None else [
            _scale_context(width + bounds[i][0], width, b - a, i) for i, (a, b) in enumerate(bounds) if i > 0]
        for i, (mc, sc) in enumerate(zip(self.mean_contexts, self.scale_contexts), start=1):
            setattr(self, f"mean_context_{i}", mc)  # the networks the codec runs, by name (runtime.files: NAME.mean_context_i.tflite)
            setattr(self, f"scale_context_{i}", sc)
        self._scale_features = keras.Model(self.hyper_scale.input, self.hyper_scale.layers[-1].input)

    def scale_features(self, z_hat, training=False):
        """The scale branch's hidden features (its last layer's input) of the rounded hyper-codes: what the scale contexts read."""
        return self._scale_features(z_hat, training=training)

    # ----------------------------------------------------------------- saving
    def get_config(self):
        ser = keras.saving.serialize_keras_object
        return {**super().get_config(), "mean_contexts": [ser(m) for m in self.mean_contexts],
                "scale_contexts": [ser(m) for m in self.scale_contexts], "slices": self.slices}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("mean_contexts", "scale_contexts"):
            config[key] = [keras.saving.deserialize_keras_object(m) for m in config[key]]
        return super().from_config(config)


def build_channel_context_model(n: int = N, m: int = M, s: int = S, slices: int = SLICES, lambdas=LAMBDAS, synthesis=None, fast=None) -> ChannelContextCAE:
    """An untrained ``channel-context`` model (``n`` transform width, ``m`` code channels, ``s`` scale-branch width, rate anchors ``lambdas``,
    ``synthesis`` the synthesis' hidden widths and ``fast`` those of a cheaper second synthesis, as in ``build_hyperprior_model``)."""
    return build_hyperprior_model(n, m, s, ChannelContextCAE, synthesis, fast, slices=slices, lambdas=tuple(lambdas), name="channel_context")


def build_from_flags(input_shape, code_length, filters, l2_penalty, l1_code, options: HyperpriorOptions = HyperpriorOptions()) -> ChannelContextCAE:
    """The registry's builder (``cae train`` flags and the hyperprior's options), as the hyperprior's."""
    return build_channel_context_model(*widths_from_flags(input_shape, code_length, filters, "channel-context"), synthesis=options.synthesis_widths)


def warm_start(model: ChannelContextCAE, hyperprior: HyperpriorCAE) -> None:
    """Copy a trained hyperprior's transforms, hyper-networks, prior and gains into ``model`` (the contexts start untrained)."""
    for name in ("encoder", "decoder", "hyper_encoder", "hyper_mean", "hyper_scale"):
        getattr(model, name).set_weights(getattr(hyperprior, name).get_weights())
    model.prior.set_weights(hyperprior.prior.get_weights())
    model.gain.assign(hyperprior.gain)
    model.inverse_gain.assign(hyperprior.inverse_gain)
    for context in model.mean_contexts:  # the hyperprior's means: no context yet
        last = context.layers[-1]
        last.set_weights([np.zeros_like(w) for w in last.get_weights()])
    kernel, bias = hyperprior.hyper_scale.layers[-1].get_weights()  # (1, 1, width, M), (M,)
    width = kernel.shape[2]
    bounds = slice_bounds(kernel.shape[3], model.slices)
    for context, (a, b) in zip(model.scale_contexts, bounds[1:]):  # the hyperprior's scales: features passed through, symbols unused
        first, last = context.layers[1], context.layers[2]
        k0 = np.zeros(first.get_weights()[0].shape, np.float32)
        k0[0, 0, :width, :] = np.eye(width, dtype=np.float32)
        first.set_weights([k0, np.zeros(width, np.float32)])
        last.set_weights([kernel[..., a:b], bias[a:b]])


def load_torch_export(model: ChannelContextCAE, folder, others: int = 0) -> None:
    """Load what ``tools/gpu_train_channel_context.py`` wrote: the hyperprior's ``.npz`` files and ``context.npz``
    (``others``: weights of ``model`` loaded from elsewhere, as in the hyperprior's)."""
    from pathlib import Path

    from cae_compress.models.hyperprior import load_torch_export as load_hyperprior

    seen = load_contexts(model, Path(folder) / "context.npz")
    load_hyperprior(model, folder, others=seen + others)


def context_layers(model: ChannelContextCAE):
    """``(key, layer)`` of every context layer, keyed as the mirror's ``context.npz`` names them (``mean_context_1_0``, ...)."""
    for i, (mc, sc) in enumerate(zip(model.mean_contexts, model.scale_contexts), start=1):
        for name, net in (("mean_context", mc), ("scale_context", sc)):
            for j in range(2):
                yield f"{name}_{i}_{j}", net.get_layer(f"{name}_{i}_{j}")


def load_contexts(model: ChannelContextCAE, path) -> int:
    """The contexts' kernels and biases from a ``context.npz``; how many weights that set."""
    with np.load(path) as f:
        for key, layer in context_layers(model):
            layer.kernel.assign(f[f"{key}/kernel"])
            layer.bias.assign(f[f"{key}/bias"])
    return 2 * len(list(context_layers(model)))


def export_torch_npz(model: ChannelContextCAE, folder) -> None:
    """The inverse of :func:`load_torch_export`: the hyperprior's ``.npz`` groups and ``context.npz`` (with the
    model's lambdas), the start a GPU slot reads (``tools/gpu_slot.py --from``)."""
    from pathlib import Path

    from cae_compress.models.hyperprior import export_torch_npz as export_hyperprior

    export_hyperprior(model, folder)
    arrays = {"lambdas": np.asarray(model.lambdas, np.float64)}
    for key, layer in context_layers(model):
        arrays[f"{key}/kernel"], arrays[f"{key}/bias"] = np.asarray(layer.kernel), np.asarray(layer.bias)
    np.savez_compressed(Path(folder) / "context.npz", **arrays)


def from_torch_export(folder, fast=None) -> ChannelContextCAE:
    """The Keras model of a ``tools/gpu_train_channel_context.py`` run (or of ``tools/gpu_train_synthesis.py`` on one):
    built with the run's rate anchors and synthesis widths, its weights loaded; ``fast``: a folder holding a cheaper
    synthesis of the same codes (``tools/gpu_train_synthesis.py``'s ``synthesis.npz``), loaded as the model's ``fast_decoder``."""
    from pathlib import Path

    from cae_compress.models.hyperprior import load_fast_synthesis, synthesis_widths

    with np.load(Path(folder) / "context.npz") as f:
        lambdas = tuple(float(v) for v in f["lambdas"]) if "lambdas" in f.files else LAMBDAS
    model = build_channel_context_model(lambdas=lambdas, synthesis=synthesis_widths(folder), fast=synthesis_widths(fast) if fast else None)
    others = len(model.fast_decoder.weights) + 1 if fast else 0  # the fast synthesis and its inverse gains
    load_torch_export(model, folder, others)
    if fast:
        load_fast_synthesis(model, fast)
    return model
