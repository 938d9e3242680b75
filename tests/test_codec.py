"""Round trips of the codec over sizes, channels and dtypes; determinism; model checks."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cae_compress import codec
from cae_compress.codecs import dense
from cae_compress.io import format as fmt
from cae_compress.errors import CaeError
from cae_compress.io.images import to_channels


def _image(h, w, c, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


@pytest.fixture(scope="module")
def lossless():
    """A dense-code codec that loses nothing but its code storage: PCA with every component (768 values per 16x16 RGB tile)."""
    from cae_compress.evaluation.baselines import PCAModel

    return PCAModel(np.random.default_rng(0).integers(0, 256, (2000, 16, 16, 3), dtype=np.uint8), 768)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    h=st.integers(1, 70),
    w=st.integers(1, 70),
    c=st.sampled_from([1, 2, 3, 4]),
    dtype=st.sampled_from(["float32", "float16", "uint8"]),
    compression=st.sampled_from(["auto", "none", "zlib", "lzma"]),
)
def test_round_trip_any_size_gives_back_the_original_pixels(lossless, h, w, c, dtype, compression):
    """Tiling, edge padding, channels, code storage and payload compression, checked against the original image."""
    img = _image(h, w, c, seed=h * 100 + w)
    data = codec.encode(lossless, img, dtype, compression)
    header = fmt.parse_header(data)
    assert (header.width, header.height) == (w, h)
    assert header.channels == (1 if c in (1, 2) else 3)  # grayscale stays grayscale
    assert header.dtype == dtype
    assert header.version == (4 if c in (2, 4) else 1)  # alpha: a version 4 file
    out = codec.decode(lossless, data)
    assert out.shape == (h, w, header.channels + (c in (2, 4))) and out.dtype == np.uint8
    if c in (2, 4):  # alpha comes back exactly
        np.testing.assert_array_equal(out[..., -1], img[..., -1])
        out = out[..., :-1]
    expected = to_channels(img, header.channels)  # the original, as luma for grayscale, without alpha
    if dtype == "uint8":  # codes quantized to 256 levels over the file
        assert 10 * np.log10(255**2 / max(np.mean((out.astype(float) - expected) ** 2), 1e-12)) > 40
    else:
        np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("shape", [(1, 1), (31, 33), (1000, 3), (3, 1000), (90, 40), (40, 90)])
def test_named_sizes(rgb_model, gray_model, shape):
    for model, c in [(rgb_model, 3), (gray_model, 1)]:
        img = _image(*shape, c)
        out = codec.decode(model, codec.encode(model, img))
        assert out.shape == (*shape, c)


def test_gray_model_encodes_luma_of_colour_images(gray_model):
    img = _image(10, 12, 3)
    out = codec.decode(gray_model, codec.encode(gray_model, img))
    assert out.shape == (10, 12, 1)


def test_float_reconstruction_close_to_model(rgb_model):
    """The codec's tiles are the model's own reconstruction of each tile."""
    img = _image(16, 16, 3)
    out = codec.decode(rgb_model, codec.encode(rgb_model, img, "float32"))
    direct = rgb_model.decode_tiles(rgb_model.encode_tiles(np.repeat(img[None], 2, axis=0)))[0]
    assert np.abs(out.astype(int) - direct.astype(int)).max() <= 1


def test_deterministic_bytes_and_codes_independent_of_tile_count(rgb_model):
    img = _image(40, 50, 3, seed=5)
    assert codec.encode(rgb_model, img) == codec.encode(rgb_model, img)
    # the same tile gives the same code whether it is alone or among hundreds of tiles, to float rounding
    # (the last bits depend on a tile's place in its batch on some CPUs: codecs/layouts.py)
    tile = img[:16, :16]
    big = np.tile(tile, (20, 20, 1))  # 400 tiles: several batches
    alone = rgb_model.layout.encode(rgb_model, tile)[0]
    many = rgb_model.layout.encode(rgb_model, big)
    scale = np.abs(alone).max()
    assert scale > 0 and np.abs(many - alone).max() <= 1e-5 * scale


def test_uint8_codes_are_smaller(rgb_model):
    img = _image(64, 64, 3)
    sizes = {d: len(codec.encode(rgb_model, img, d, "none")) for d in ("float32", "float16", "uint8")}
    payload = {d: s - fmt.HEADER_SIZE for d, s in sizes.items()}
    assert payload == {"float32": 16 * 24 * 4, "float16": 16 * 24 * 2, "uint8": 16 * 24}


def test_wrong_model_is_refused_by_name(rgb_model, tmp_path):
    from cae_compress.models import build_model, save_model
    from cae_compress.zoo import load

    other_path = save_model(build_model("dense", (16, 16, 3), code_length=24, filters=4), tmp_path / "other.keras")
    other = load(model_path=other_path)
    data = codec.encode(rgb_model, _image(8, 8, 3))
    with pytest.raises(CaeError, match=f"encoded by model '{rgb_model.name}'"):
        codec.decode(other, data, "x.cae")


def test_bad_options():
    with pytest.raises(CaeError, match="unknown code dtype"):
        dense.check_options("int4", "auto")
    with pytest.raises(CaeError, match="unknown compression"):
        dense.check_options("uint8", "brotli")
