"""An entropy-coded architecture added from outside the package: one model module, one latent-part module, one registry line.

``tests/toy_scale_model.py`` (its Keras builder and its options) and
``tests/toy_scale_latent.py`` (its latent part: runtime coding, training
likelihood, exported arrays) are registered here, and nothing else: the
library's training function trains it, evaluates it as a rate model and
exports it to LiteRT; the LiteRT codec encodes and decodes its files, and
the TensorFlow backend decodes them to the same symbols.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from cae_compress import codec, registry, zoo
from cae_compress.latent.base import LatentPart
from cae_compress.latent.channel_context import ChannelContext
from cae_compress.latent.mean_scale import MeanScale
from cae_compress.runtime.files import ModelFiles
from conftest import smooth_images
from toy_scale_latent import ScaleOnly

TOY = registry.Architecture("toy-scale", "toy_scale_model:build", "cae_compress.codecs.hyperprior:HyperpriorCodec", True,
                            latent="toy_scale_latent:ScaleOnly", options="toy_scale_model:ToyOptions")


def test_latent_parts_answer_one_interface_and_a_part_missing_a_method_cannot_be_made():
    assert all(issubclass(p, LatentPart) for p in (MeanScale, ChannelContext, ScaleOnly))
    for arch in registry.ARCHITECTURES.values():
        part = arch.latent_class()
        assert (part is not None) == (arch.codec_class().version == 3)  # the hyperprior codec composes one; v1/v2 codecs code without
        assert part is None or issubclass(part, LatentPart)

    class NoLikelihood(LatentPart):
        @classmethod
        def from_export(cls, nets, entropy, code_length):
            return cls()

        def parameters(self, z_symbols):
            return ()

        def encode(self, enc, y, params, state=None):
            return y

        def decode(self, dec, params, label, state=None):
            return params, params

        @classmethod
        def export_arrays(cls, cae):
            return {}

    with pytest.raises(TypeError, match="likelihood"):
        NoLikelihood.from_export({}, {}, 0)


# the hyperprior model always builds its means network (hyper_mean); a part that never reads it leaves it without gradients
@pytest.mark.filterwarnings("ignore:Gradients do not exist for variables")
def test_a_toy_architecture_trains_exports_and_round_trips_through_litert(tmp_path, monkeypatch):
    from cae_compress.training.train import TrainConfig, train

    monkeypatch.setitem(registry.ARCHITECTURES, "toy-scale", TOY)
    data = tmp_path / "d.npz"
    np.savez(data, x_train=smooth_images(32, 64, seed=1), x_test=smooth_images(8, 64, seed=2))
    run = tmp_path / "run"
    result = train(TrainConfig(model="toy-scale", dataset=str(data), code_length=12, epochs=1, batch_size=16, tile_size=64,
                               arch_options=("width=8", "synthesis_widths=8,6,4")), run_dir=run, quiet=True)
    assert np.isfinite(result.history["loss"][0])
    assert result.test["bpp"] > 0 and "lambda" in result.test  # evaluated as a rate model: the model's own evaluate_tiles
    meta = json.loads((run / "run.json").read_text())
    assert meta["config"]["arch_options"] == ["width=8", "synthesis_widths=8,6,4"]
    assert meta["model"]["options"] == {"width": 8, "synthesis_widths": [8, 6, 4]}

    files = ModelFiles(run / "model.keras")
    names = {p.name for p in files.exported()}
    assert "model.decoder.tflite" in names and "model.hyper_mean.tflite" not in names  # the part runs no means network
    with np.load(files.npz("hyper")) as arrays:
        assert "toy_scale_0_kernel" in arrays.files and "scale_0_kernel" not in arrays.files  # the part's own export

    lite = zoo.load(model_path=run, backend="litert")
    keras_model = zoo.load(model_path=run, backend="tensorflow")
    assert isinstance(lite.latent, ScaleOnly) and lite.backend == "litert"
    assert keras_model.cae.decoder.get_layer("deconv_2").filters == 4  # built with the run's options
    img = smooth_images(1, 80, seed=3)[0][:72]
    file = codec.encode(lite, img, quality=60)
    assert lite.latent.bands == 1  # a band's state came from start() and went to encode
    out = codec.decode(lite, file)
    assert out.shape == img.shape and lite.latent.bands == 1
    other = codec.decode(keras_model, file)  # the same symbols (the record's CRC-32 checks them), the Keras synthesis
    assert np.abs(out.astype(int) - other).max() <= 2


def test_every_network_of_the_hyperprior_family_fits_inside_the_codec_margins(monkeypatch):
    """The codec's window and band margins are constants of the decoder: each registered architecture's receptive fields,
    measured on its Keras model, must fit inside them (a new architecture with a wider synthesis fails here, not in a seam)."""
    from cae_compress.codecs.hyperprior import HYPER_MARGIN, MARGIN
    from cae_compress.models import build_model
    from cae_compress.models.receptive import margins_needed, reach

    import keras

    monkeypatch.setitem(registry.ARCHITECTURES, "toy-scale", TOY)
    seen = {}
    for name, arch in registry.ARCHITECTURES.items():
        if arch.codec_class().version != 3:
            continue
        needed = margins_needed(build_model(name, (64, 64, 3), 12, 8))
        seen[name] = needed
        assert max(needed[n] for n in needed if not n.startswith("hyper_")) <= MARGIN, (name, needed)
        assert max(needed["hyper_mean"], needed["hyper_scale"]) <= HYPER_MARGIN, (name, needed)
    assert seen["hyperprior"]["decoder"] == 2 and seen["shallow"]["decoder"] == 1  # the reaches the codec's comments state
    wide = keras.Sequential([keras.Input((None, None, 2)), keras.layers.Conv2D(2, 7, padding="same")])
    strided = keras.Sequential([keras.Input((None, None, 2)), keras.layers.Conv2D(2, 7, strides=4, padding="same")])
    assert reach(wide, 2) == 3 and reach(strided, 2, down=4) == 1  # a 7x7 kernel: 3 positions either side; at stride 4: one block
