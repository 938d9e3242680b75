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
    """Through the CLI, with the architecture's own option (``--arch-option hidden=6``: a synthesis of 2x6 channels)."""
    import csv
    import json

    from typer.testing import CliRunner

    from cae_compress.cli import app

    data = tmp_path / "d.npz"
    np.savez(data, x_train=smooth_images(96, 32, seed=1), x_test=smooth_images(16, 32, seed=2))
    r = CliRunner().invoke(app, ["train", "--model", "shallow", "--dataset", str(data), "--code-length", "12", "--filters", "8", "--epochs", "3",
                                 "--batch-size", "16", "--lr", "3e-3", "--arch-option", "hidden=6", "--run-dir", str(tmp_path / "run"), "--quiet"])
    assert r.exit_code == 0, r.output
    with open(tmp_path / "run" / "history.csv") as f:
        losses = [float(row["loss"]) for row in csv.DictReader(f)]
    assert losses[-1] < losses[0]
    assert json.loads((tmp_path / "run" / "run.json").read_text())["config"]["arch_options"] == ["hidden=6"]
    keras_model = zoo.load(model_path=tmp_path / "run", backend="tensorflow")
    model = zoo.load(model_path=tmp_path / "run")
    assert isinstance(model.latent, ChannelContext) and model.arch == "shallow"
    img = _photo_like(40, 56)
    data_ = codec.encode(model, img, quality=50)
    out = codec.decode(model, data_)
    assert out.shape == img.shape
    assert np.abs(out.astype(int) - codec.decode(keras_model, data_)).max() <= 2  # LiteRT's sub-pixel graph is the Keras synthesis
    from cae_compress.models import load_model

    up = load_model(tmp_path / "run" / "model.keras").decoder.get_layer("up")
    assert up.filters == 12  # two branches of hidden=6


def test_an_unknown_architecture_option_is_one_line_before_any_work(tmp_path):
    from typer.testing import CliRunner

    from cae_compress.cli import app

    r = CliRunner().invoke(app, ["train", "--model", "shallow", "--arch-option", "depth=3", "--run-dir", str(tmp_path / "run")])
    assert r.exit_code == 2 and "architecture option 'depth=3'" in r.output and "hidden" in r.output
    assert not (tmp_path / "run").exists()
