import numpy as np
import pytest

from cae_compress.errors import CaeError
from cae_compress.models import (
    build_model,
    fingerprint,
    load_model,
    reconstruction_loss,
    save_model,
)
from cae_compress.io.pixels import from_model_range, to_model_range


@pytest.mark.parametrize(
    "arch, shape, code, code_shape",
    [
        ("dense", (32, 32, 3), 128, (128,)),
        ("dense", (28, 28, 1), 32, (32,)),
        ("deep", (32, 32, 3), 64, (64,)),
        ("single-layer", (28, 28, 1), 0, (30, 30, 32)),
    ],
)
def test_shapes_and_split(arch, shape, code, code_shape):
    model = build_model(arch, shape, code_length=code or 1, filters=None if arch == "single-layer" else 4)
    x = np.random.default_rng(0).uniform(*model.value_range, (3, *shape)).astype("float32")
    codes = model.encoder(x)
    assert tuple(codes.shape[1:]) == code_shape
    out = model.decoder(codes)
    assert tuple(out.shape) == (3, *shape)
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(out), atol=1e-6)
    lo, hi = model.value_range
    assert float(np.min(out)) >= lo and float(np.max(out)) <= hi


def test_dense_layers_follow_the_spec():
    model = build_model("dense", (32, 32, 3), code_length=128, filters=16)
    conv = model.encoder.get_layer("conv")
    assert conv.kernel_size == (3, 3) and conv.padding == "valid" and conv.filters == 16
    assert model.encoder.get_layer("code").units == 128
    assert model.decoder.get_layer("expand").units == 30 * 30 * 3
    deconv = model.decoder.get_layer("deconv")
    assert deconv.__class__.__name__ == "Conv2DTranspose" and deconv.filters == 3 and deconv.kernel_size == (3, 3)
    assert model.value_range == (0.0, 1.0) and model.loss_scale == 1.0


def test_single_layer_is_the_published_model():
    model = build_model("single-layer", (32, 32, 3), l2_penalty=1e-3)
    assert model.value_range == (-1.0, 1.0) and model.loss_scale == 0.5
    conv = model.encoder.get_layer("conv")
    assert conv.filters == 32 and conv.activation.__name__ == "tanh" and conv.padding == "valid"
    # L2 weight decay on the encoding convolution only
    assert conv.kernel_regularizer is not None
    assert model.decoder.get_layer("deconv").kernel_regularizer is None
    x = np.zeros((2, 32, 32, 3), "float32")
    model(x)
    expected = 1e-3 * float(np.sum(np.square(conv.kernel.numpy())))
    assert len(model.losses) == 1
    assert float(model.losses[0]) == pytest.approx(expected, rel=1e-5)


def test_loss_is_scaled_mse():
    y = np.zeros((2, 4, 4, 1), "float32")
    p = np.full((2, 4, 4, 1), 0.5, "float32")
    assert np.asarray(reconstruction_loss(1.0)(y, p)) == pytest.approx([0.25, 0.25])
    assert np.asarray(reconstruction_loss(0.5)(y, p)) == pytest.approx([0.125, 0.125])


def test_l1_code_adds_activity_penalty():
    plain = build_model("dense", (8, 8, 1), code_length=4, filters=2)
    sparse = build_model("dense", (8, 8, 1), code_length=4, filters=2, l1_code=0.1)
    x = np.random.default_rng(0).uniform(0, 1, (2, 8, 8, 1)).astype("float32")
    plain(x)
    sparse(x)
    assert len(plain.losses) == 0 and len(sparse.losses) == 1 and float(sparse.losses[0]) > 0


def test_save_load_round_trip(tmp_path):
    model = build_model("deep", (16, 16, 3), code_length=8, filters=4)
    path = save_model(model, tmp_path / "m.keras")
    loaded = load_model(path)
    assert loaded.arch == "deep" and loaded.tile_shape == (16, 16, 3) and loaded.code_length == 8
    x = np.random.default_rng(1).uniform(0, 1, (2, 16, 16, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
    assert fingerprint(loaded) == fingerprint(model)
    assert load_model(tmp_path.joinpath("m.keras")).arch == "deep"


def test_fingerprint_names_the_weights():
    """Equal weights give equal fingerprints; changing one value of one weight changes it."""
    a = build_model("dense", (8, 8, 1), code_length=4, filters=2)
    b = build_model("dense", (8, 8, 1), code_length=4, filters=2)
    b.set_weights(a.get_weights())
    assert fingerprint(a) == fingerprint(b)
    weights = b.get_weights()
    weights[-1] = weights[-1].copy()
    weights[-1].flat[0] += 1e-3
    b.set_weights(weights)
    assert fingerprint(a) != fingerprint(b)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"arch": "nope"}, "unknown model 'nope'"),
        ({"code_length": 0}, "--code-length must be positive"),
        ({"arch": "deep", "input_shape": (30, 30, 3)}, "divisible by 4"),
        ({"input_shape": (2, 2, 3)}, "too small"),
    ],
)
def test_bad_model_arguments(kwargs, message):
    with pytest.raises(CaeError, match=message):
        build_model(**kwargs)


def test_load_model_rejects_non_models(tmp_path):
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    with pytest.raises(CaeError, match="not a cae model"):
        load_model(tmp_path / "junk.keras")
    with pytest.raises(CaeError, match="no such model file"):
        load_model(tmp_path / "missing.keras")


def test_pixel_range_conversion_round_trips():
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    for value_range in [(0.0, 1.0), (-1.0, 1.0)]:
        x = to_model_range(pixels, value_range)
        assert x.min() == value_range[0] and x.max() == value_range[1]
        np.testing.assert_array_equal(from_model_range(x, value_range), pixels)
