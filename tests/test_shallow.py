"""The ``shallow`` architecture: the channel-context model with a two-layer synthesis, trained and used as any other.

``tests/test_gpu_slot.py`` checks its PyTorch mirror against this Keras
model and a GPU slot's weights through LiteRT; here ``cae train --model
shallow`` trains it on the CPU and its files round-trip.
"""

from __future__ import annotations

import numpy as np

from cae_compress import codec, zoo
from cae_compress.latent.channel_context import ChannelContext
from tests.test_channel_context import _photo_like, smooth_images


def test_cae_train_shallow_lowers_the_loss_and_its_files_round_trip(tmp_path):
    from cae_compress.training.train import TrainConfig, train

    data = tmp_path / "d.npz"
    np.savez(data, x_train=smooth_images(96, 32, seed=1), x_test=smooth_images(16, 32, seed=2))
    result = train(TrainConfig(model="shallow", dataset=str(data), code_length=12, filters=8, epochs=3, batch_size=16, learning_rate=3e-3),
                   run_dir=tmp_path / "run", quiet=True)
    losses = result.history["loss"]
    assert losses[-1] < losses[0] and result.test["bpp"] > 0
    keras_model = zoo.load(model_path=tmp_path / "run", backend="tensorflow")
    model = zoo.load(model_path=tmp_path / "run")
    assert isinstance(model.latent, ChannelContext) and model.arch == "shallow"
    img = _photo_like(40, 56)
    data_ = codec.encode(model, img, quality=50)
    out = codec.decode(model, data_)
    assert out.shape == img.shape
    assert np.abs(out.astype(int) - codec.decode(keras_model, data_)).max() <= 2  # LiteRT's sub-pixel graph is the Keras synthesis
