"""The channel-context model: a hyperprior whose slices of channels are coded given the slices before, tables decided in integers."""

from __future__ import annotations

import numpy as np
import pytest

from cae_compress import codec, zoo
from cae_compress.latent import channel_context as cc
from cae_compress.io import format as fmt
from conftest import smooth_images


def _photo_like(h, w, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([128 + 100 * np.sin(3 * xx + 2 * yy), 128 + 90 * np.cos(4 * yy), 90 + 60 * (xx > 0.5)], -1) + rng.normal(0, 6, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _tiny_hyperprior():
    import keras

    from cae_compress.models.hyperprior import build_hyperprior_model

    keras.utils.set_random_seed(5)
    model = build_hyperprior_model(8, 12, 6)
    k = len(model.lambdas)
    model.gain.assign(np.repeat(np.log(np.linspace(0.5, 8.0, k))[:, None], 12, axis=1))
    model.inverse_gain.assign(-np.asarray(model.gain))
    return model


def _saved(model, folder, name):
    from cae_compress.models import save_model
    from cae_compress.models.export import export_lite
    from cae_compress.models.hyperprior import round_weights_to_float16

    round_weights_to_float16(model)
    path = folder / f"{name}.keras"
    save_model(model, path)
    export_lite(model, path)
    return path


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """A tiny hyperprior and a channel-context model warm-started from it, then one whose contexts do something."""
    from cae_compress.models.channel_context import build_channel_context_model, warm_start

    folder = tmp_path_factory.mktemp("cc")
    hyper = _tiny_hyperprior()
    hyper_path = _saved(hyper, folder, "hyper")
    warm = build_channel_context_model(8, 12, 6)
    warm_start(warm, hyper)
    warm_path = _saved(warm, folder, "warm")
    rng = np.random.default_rng(0)
    for context in warm.mean_contexts + warm.scale_contexts:
        context.set_weights([w + rng.normal(0, 0.2, w.shape).astype(np.float32) for w in context.get_weights()])
    busy_path = _saved(warm, folder, "busy")
    return hyper_path, warm_path, busy_path


def test_warm_started_from_a_hyperprior_it_codes_the_hyperpriors_symbols(pair):
    """No context yet (zero mean contexts, scale contexts passing the features through): the very same symbols and tables.

    The record holds a CRC-32 of every symbol: equal records, equal symbols
    (coded slice by slice, so in another order); and the same pixels.
    """
    hyper_path, warm_path, _ = pair
    hyper, warm = zoo.load(model_path=hyper_path), zoo.load(model_path=warm_path)
    img = _photo_like(70, 90)
    for q in (0, 60, 100):
        a, b = codec.encode(hyper, img, quality=q), codec.encode(warm, img, quality=q)
        (_, record_h, streams_h), (_, record_w, streams_w) = fmt.unpack_streams(a), fmt.unpack_streams(b)
        assert record_h == record_w and streams_h[0] == streams_w[0]  # the hyper-codes, and the CRC of every symbol
        assert abs(len(streams_h[1]) - len(streams_w[1])) <= 8  # the same tables: the same bits, give or take the coder's last words
        assert np.array_equal(codec.decode(hyper, a), codec.decode(warm, b))


def test_either_backend_encodes_and_decodes_to_identical_symbols(pair, monkeypatch):
    _, _, busy_path = pair
    lite, keras_model = (zoo.load(model_path=busy_path, backend=b) for b in ("litert", "tensorflow"))
    assert isinstance(lite.latent, cc.ChannelContext) and isinstance(keras_model.latent, cc.ChannelContext) and lite.fingerprint == keras_model.fingerprint
    seen = []
    original = cc.ChannelContext.decode
    monkeypatch.setattr(cc.ChannelContext, "decode", lambda self, *a: (lambda out: seen.append(out[0]) or out)(original(self, *a)))
    img = _photo_like(150, 90, seed=2)
    for q in (10, 80):
        files = {name: codec.encode(model, img, quality=q) for name, model in (("lite", lite), ("keras", keras_model))}
        for data in files.values():
            symbols = []
            for dec in (lite, keras_model):
                seen.clear()
                out = codec.decode(dec, data)
                symbols.append(np.concatenate([s.ravel() for s in seen]))
                assert out.shape == img.shape
            assert np.array_equal(*symbols) and np.count_nonzero(symbols[0]) > 0


def test_the_context_changes_the_tables_and_effort_refines_through_it(pair):
    """With contexts, slices after the first are coded with other tables than the hyperprior's; --effort still gives a file both decode."""
    hyper_path, _, busy_path = pair
    img = _photo_like(64, 64, seed=3)
    hyper, busy = zoo.load(model_path=hyper_path), zoo.load(model_path=busy_path)
    assert codec.encode(hyper, img, quality=50)[fmt.HEADER_SIZE :] != codec.encode(busy, img, quality=50)[fmt.HEADER_SIZE :]
    keras_model = zoo.load(model_path=busy_path, backend="tensorflow")
    steps = []
    refined = codec.encode(keras_model, img, quality=50, effort=2, on_step=steps.append)
    assert sum(steps) > 0
    assert codec.decode(busy, refined).shape == img.shape


def test_cae_train_channel_context_lowers_the_loss(tmp_path):
    from cae_compress.training.train import TrainConfig, train

    data = tmp_path / "d.npz"
    np.savez(data, x_train=smooth_images(96, 32, seed=1), x_test=smooth_images(16, 32, seed=2))
    result = train(TrainConfig(model="channel-context", dataset=str(data), code_length=12, filters=8, epochs=3, batch_size=16, learning_rate=3e-3),
                   run_dir=tmp_path / "run", quiet=True)
    losses = result.history["loss"]
    assert losses[-1] < losses[0] and result.test["bpp"] > 0
    model = zoo.load(model_path=tmp_path / "run")
    assert isinstance(model.latent, cc.ChannelContext)
    assert codec.decode(model, codec.encode(model, _photo_like(40, 40), quality=50)).shape == (40, 40, 3)
