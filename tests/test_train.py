import csv
import json

import keras
import numpy as np
import pytest

from cae_compress.errors import CaeError
from cae_compress.models import load_model
from cae_compress.training.train import TrainConfig, train


def _config(tiny_npz, **kw):
    base = dict(model="dense", dataset=str(tiny_npz), code_length=16, filters=4, epochs=2, batch_size=64, learning_rate=3e-3)
    base.update(kw)
    return TrainConfig(**base)


def test_training_lowers_loss_and_writes_run_folder(tiny_npz, tmp_path):
    run = tmp_path / "run"
    result = train(_config(tiny_npz, epochs=3), run_dir=run, quiet=True)
    losses = result.history["loss"]
    assert losses[-1] < losses[0]
    assert result.history["val_loss"][-1] < result.history["val_loss"][0]
    for name in ["run.json", "model.keras", "history.csv", "validation_results.json", "test_results.json"]:
        assert (run / name).is_file(), name
    assert list((run / "tensorboard" / "train").glob("events.*"))
    assert list((run / "tensorboard" / "validation").glob("events.*"))
    assert list((run / "tensorboard" / "images").glob("events.*"))
    assert not (run / "backup").exists()  # removed once the run finished
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "finished" and meta["config"]["code_length"] == 16
    test = json.loads((run / "test_results.json").read_text())
    assert set(test) >= {"mse", "psnr", "loss", "mse_half_pm1"} and test["tiles"] == 64
    assert test["psnr"] == pytest.approx(10 * np.log10(255**2 / test["mse"]), abs=1.5)  # mean of per-image PSNR
    model = load_model(run)
    assert model.code_length == 16


def test_resume_continues_a_killed_run(tiny_npz, tmp_path):
    run = tmp_path / "run"

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(_config(tiny_npz, epochs=4), run_dir=run, quiet=True, callbacks=[Kill()])
    assert (run / "backup").is_dir()
    with pytest.raises(CaeError, match="already exists"):
        train(_config(tiny_npz, epochs=4), run_dir=run, quiet=True)

    epochs_seen = []

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            epochs_seen.append(epoch)

    result = train(TrainConfig(), run_dir=run, resume=True, quiet=True, callbacks=[Record()])
    assert epochs_seen == [2, 3]  # epochs 0 and 1 finished before the kill
    with (run / "history.csv").open() as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [0, 1, 2, 3]
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
    assert result.test["psnr"] > 0


def test_single_layer_reports_published_metric(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (200, 12, 12), dtype=np.uint8)
    np.savez(tmp_path / "m.npz", x_train=x, x_test=x[:20])
    result = train(TrainConfig(model="single-layer", dataset=str(tmp_path / "m.npz"), epochs=1, batch_size=50, filters=4), run_dir=tmp_path / "r", quiet=True)
    t = result.test
    # loss = MSE/2 on [-1, 1] before rounding; mse_half_pm1 is the same on the uint8 reconstruction
    assert t["mse_half_pm1"] == pytest.approx(t["mse"] * (2 / 255) ** 2 / 2)
    assert t["mse_half_pm1"] == pytest.approx(t["loss"], rel=0.05)


def test_nan_loss_stops_with_clear_message(tiny_npz, tmp_path):
    class PoisonWeights(keras.callbacks.Callback):
        """Make the weights NaN after a few steps, as a diverging run would."""

        def on_train_batch_end(self, batch, logs=None):
            if batch == 2:
                bias = self.model.decoder.get_layer("deconv").bias
                bias.assign(np.full(bias.shape, np.nan, "float32"))

    with pytest.raises(CaeError) as err:
        train(_config(tiny_npz), run_dir=tmp_path / "nan", quiet=True, callbacks=[PoisonWeights()])
    assert "loss became nan at batch 3" in err.value.message and "--learning-rate" in err.value.message
    assert err.value.exit_code == 1
    assert json.loads((tmp_path / "nan" / "run.json").read_text())["status"] == "failed: NaN loss"


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"model": "vgg"}, "unknown model"),
        ({"code_length": 0}, "--code-length must be positive"),
        ({"optimizer": "adagrad"}, "unknown optimizer"),
        ({"dataset": "nowhere"}, "unknown dataset"),
        ({"lr_decay": 1.5}, "--lr-decay"),
    ],
)
def test_bad_input_leaves_nothing_behind(tiny_npz, tmp_path, kw, message):
    run = tmp_path / "run"
    with pytest.raises(CaeError, match=message):
        train(_config(tiny_npz, **kw), run_dir=run, quiet=True)
    assert not run.exists()


def test_folder_dataset_trains(tmp_path):
    from PIL import Image

    from conftest import smooth_images

    for i, img in enumerate(smooth_images(5, size=48, seed=9)):
        Image.fromarray(img).save(tmp_path / f"{i}.png")
    result = train(TrainConfig(dataset=str(tmp_path), tile_size=16, code_length=8, filters=4, epochs=2, batch_size=8), run_dir=tmp_path / "run", quiet=True)
    assert len(result.history["loss"]) == 2
    assert load_model(tmp_path / "run").tile_shape == (16, 16, 3)


def test_init_from_starts_from_those_weights(tiny_npz, tmp_path):
    """--init-from works for every architecture: training begins at the given model's weights."""
    config = dict(dataset=str(tiny_npz), code_length=8, filters=4, epochs=1, batch_size=64)
    first = train(TrainConfig(**config), run_dir=tmp_path / "a", quiet=True)
    start = load_model(first.run_dir).get_weights()
    seen = []

    class Capture(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.extend(w.copy() for w in self.model.get_weights())

    train(TrainConfig(**config, init_from=str(first.run_dir / "model.keras"), seed=5), run_dir=tmp_path / "b", quiet=True, callbacks=[Capture()])
    assert len(seen) == len(start) and all(np.array_equal(a, b) for a, b in zip(seen, start))
    with pytest.raises(CaeError, match="not the same architecture"):
        train(TrainConfig(**{**config, "code_length": 9}, init_from=str(first.run_dir / "model.keras")), run_dir=tmp_path / "c", quiet=True)


def test_psnr_loss_is_minus_each_images_psnr_and_training_raises_it(tiny_npz, tmp_path):
    from cae_compress.models import reconstruction_loss

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (3, 8, 8, 3)).astype("float32")
    y = np.clip(x + rng.normal(0, [[[[0.01]]], [[[0.05]]], [[[0.2]]]], x.shape), 0, 1).astype("float32")
    per_image = 10 * np.log10(1 / np.mean((x - y) ** 2, axis=(1, 2, 3)))
    assert np.allclose(np.asarray(reconstruction_loss(1.0, "psnr")(x, y)), -per_image, atol=1e-3)
    assert np.allclose(np.asarray(reconstruction_loss(0.5, "psnr", (-1, 1))(2 * x - 1, 2 * y - 1)), -per_image, atol=1e-3)
    result = train(_config(tiny_npz, model="single-layer", loss="psnr", epochs=3), run_dir=tmp_path / "run", quiet=True)
    assert result.history["val_loss"][-1] < result.history["val_loss"][0]
    assert np.allclose(result.history["val_loss"], -np.asarray(result.history["val_psnr"]), atol=0.01)  # val_loss is minus the mean PSNR
    assert json.loads((tmp_path / "run" / "run.json").read_text())["config"]["loss"] == "psnr"


@pytest.mark.parametrize("kw, message", [
    (dict(loss="ssim"), "unknown loss 'ssim' (choose from: mse, psnr)"),
    (dict(loss="psnr", model="hyperprior"), "--loss psnr is for fixed-length code models"),
])
def test_bad_loss_is_refused(tiny_npz, kw, message):
    with pytest.raises(CaeError) as err:
        _config(tiny_npz, **kw).validate()
    assert message in err.value.message
