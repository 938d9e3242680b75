"""Rate models: the learned prior's integer tables, the range coder, version 2 files, training."""

import json
import subprocess
import sys

import numpy as np
import pytest

from cae_compress import codec, zoo
from cae_compress.codecs import dense, layouts
from cae_compress.io import format as fmt
from cae_compress.entropy_models.tables import Tables, decode_symbols, encode_symbols
from cae_compress.errors import CaeError
from cae_compress.runtime.files import ModelFiles
from cae_compress.evaluation.metrics import bd_rate
from conftest import smooth_images


@pytest.fixture(scope="module")
def tables(rate_model_path):
    return Tables(json.loads(ModelFiles(rate_model_path).lite_json.read_text())["entropy"])


def test_tables_are_integer_and_normalised(rate_model_path, tables):
    meta = json.loads(ModelFiles(rate_model_path).lite_json.read_text())["entropy"]
    assert meta["precision"] == 24 and len(meta["frequencies"]) == 6
    for f in meta["frequencies"]:
        assert all(isinstance(v, int) and v >= 1 for v in f) and sum(f) == 1 << 24


def _ideal_bits(tables: Tables, symbols: np.ndarray) -> float:
    """The ideal code length in bits of integer codes (n, channels), clamped, under the tables."""
    s = tables.clamp(symbols) - tables.offsets
    return float(sum(-np.log2(p[s[:, c]]).sum() for c, p in enumerate(tables._probabilities)))


def test_coder_round_trip_and_ideal_length(tables):
    rng = np.random.default_rng(0)
    symbols = np.rint(rng.normal(0, 3, (5000, tables.channels))).astype(np.int64)
    symbols[0, 0] = 10_000  # far outside every range: clamped
    data = encode_symbols(symbols, tables)
    back = decode_symbols(data, len(symbols), tables)
    np.testing.assert_array_equal(back, tables.clamp(symbols))
    assert back[0, 0] < 10_000
    ideal = _ideal_bits(tables, symbols)
    assert ideal <= 8 * len(data) <= ideal * 1.01 + 64  # a range coder is within a few words of the information content


def test_one_symbol_channels_cost_nothing():
    t = Tables({"precision": 24, "offsets": [0, -1], "frequencies": [[1 << 24], [1 << 22, 3 << 22]]})
    symbols = np.array([[5, 0], [0, -1], [0, 0]] * 100)
    back = decode_symbols(encode_symbols(symbols, t), len(symbols), t)
    np.testing.assert_array_equal(back, t.clamp(symbols))
    assert (back[:, 0] == 0).all()


def test_tables_refuse_bad_frequencies(tables):
    with pytest.raises(CaeError, match="sum to 2\\*\\*precision"):
        Tables({"precision": 24, "offsets": [0], "frequencies": [[1, 2, 3]]})
    with pytest.raises(CaeError, match="unreadable"):
        Tables({"precision": 24})


@pytest.mark.parametrize("backend", ["litert", "tensorflow"])
def test_rate_codec_round_trip(rate_model_path, backend):
    model = zoo.load(model_path=rate_model_path, backend=backend)
    img = smooth_images(1, 300, seed=4)[0][:, :190]  # not a multiple of 8
    data = codec.encode(model, img)
    header = fmt.parse_header(data)
    assert (header.version, header.dtype, header.compression) == (2, "int", "range")
    assert (header.tile_height, header.tile_width, header.code_length) == (8, 8, 6) and header.n_tiles == 38 * 24
    out = codec.decode(model, data)
    assert out.shape == img.shape and out.dtype == np.uint8  # the pixels of trained models: tests/test_shipped.py


def test_windows_leave_no_seams(rate_model_path, monkeypatch):
    """Small windows with their margins of context give what one window over the whole image gives."""
    model = zoo.load(model_path=rate_model_path, backend="litert")
    img = smooth_images(1, 200, seed=10)[0][:, :150]
    whole_codes = model.layout.encode(model, img)
    whole = codec.reconstruct(model, img)
    monkeypatch.setattr(layouts, "WINDOW", 5)  # 40-pixel windows: 5x4 of them, every seam inside the image
    tiled_codes = model.layout.encode(model, img)
    np.testing.assert_allclose(tiled_codes, whole_codes, atol=1e-4)
    assert np.abs(codec.reconstruct(model, img).astype(int) - whole).max() <= 1


def test_windows_cover_each_side():
    assert layouts._windows(10, 4, 2) == [(0, 4, 0, 6), (4, 8, 2, 10), (8, 10, 6, 10)]
    assert layouts._windows(3, 64, 4) == [(0, 3, 0, 3)]


def test_backends_decode_the_same_file_alike(rate_model_path):
    lite = zoo.load(model_path=rate_model_path, backend="litert")
    keras = zoo.load(model_path=rate_model_path, backend="tensorflow")
    img = smooth_images(1, 64, seed=5)[0]
    data = codec.encode(lite, img)
    a, b = codec.decode(lite, data), codec.decode(keras, data)
    assert np.abs(a.astype(int) - b).max() <= 1
    # the codes themselves: integers, equal but for values within float rounding of a half
    ca = lite.layout.encode(lite, img)
    cb = keras.layout.encode(keras, img)
    assert np.mean(np.rint(ca) != np.rint(cb)) < 1e-3


def test_fresh_process_decodes_identical_pixels(rate_model_path, tmp_path):
    """Encode here with the table-driven coder; decode in another process: the same pixels."""
    from PIL import Image

    img = smooth_images(1, 96, seed=6)[0]
    model = zoo.load(model_path=rate_model_path)
    (tmp_path / "a.cae").write_bytes(codec.encode(model, img))
    expected = codec.decode(model, (tmp_path / "a.cae").read_bytes())
    subprocess.run(
        [sys.executable, "-m", "cae_compress", "decode", str(tmp_path / "a.cae"), "--model-path", str(rate_model_path), "-o", str(tmp_path / "b.png")],
        check=True, capture_output=True,
    )
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "b.png")), expected)


def test_rate_file_needs_a_rate_model(rate_model_path, rgb_model):
    img = smooth_images(1, 32, seed=7)[0]
    rate = zoo.load(model_path=rate_model_path)
    for encoder, decoder in [(rgb_model, rate), (rate, rgb_model)]:
        with pytest.raises(CaeError, match="encoded by model"):
            codec.decode(decoder, codec.encode(encoder, img))


def test_version_2_fields_go_together(rate_model_path):
    data = bytearray(codec.encode(zoo.load(model_path=rate_model_path), smooth_images(1, 16, seed=8)[0]))
    data[4] = 1  # an entropy-coded payload in a version 1 file
    import struct
    import zlib

    data[72:76] = struct.pack("<I", zlib.crc32(bytes(data[76:]), zlib.crc32(bytes(data[:72]))) & 0xFFFFFFFF)
    with pytest.raises(CaeError, match="does not go with"):
        fmt.parse_header(bytes(data))
    with pytest.raises(CaeError, match="rate models only"):
        dense.check_options("int", "auto")


def test_train_rate_model_lowers_the_loss(tiny_npz, tmp_path):
    from cae_compress.training.train import TrainConfig, train

    run = tmp_path / "run"
    result = train(
        TrainConfig(model="factorized", dataset=str(tiny_npz), code_length=8, filters=8, epochs=3, batch_size=32, lmbda=50, learning_rate=3e-3),
        run_dir=run, quiet=True,
    )
    loss = result.history["loss"]
    assert loss[-1] < loss[0]
    assert result.test["bpp"] > 0 and result.test["lmbda"] == 50
    meta = json.loads(ModelFiles(run / "model.keras").lite_json.read_text())
    assert meta["tile_shape"] == [8, 8, 3] and len(meta["entropy"]["frequencies"]) == 8
    # the real file's rate is the evaluated information content plus the header and the coder's last word
    model = zoo.load(model_path=run)
    x = np.load(tiny_npz)["x_test"][:1]
    assert len(codec.encode(model, x[0])) >= fmt.HEADER_SIZE


def test_bd_rate_of_a_scaled_curve():
    rate = np.array([0.2, 0.4, 0.6, 0.9])
    psnr = np.array([26.0, 29.0, 31.0, 33.0])
    assert bd_rate(rate, psnr, rate * 0.8, psnr) == pytest.approx(-20.0, abs=1e-6)
    assert bd_rate(rate, psnr, rate, psnr + 50) is None  # no common PSNR interval


def test_reexport_keeps_the_tables_files_were_made_with(rate_model_path, tmp_path):
    import shutil

    from cae_compress.models.export import export_lite
    from cae_compress.models import load_model

    path = tmp_path / "model.keras"
    shutil.copy(rate_model_path, path)
    for src in ModelFiles(rate_model_path).exported():
        shutil.copy(src, tmp_path / src.name)
    meta_path = ModelFiles(path).lite_json
    meta = json.loads(meta_path.read_text())
    meta["entropy"]["frequencies"][0][0] += 1  # as if another machine had rounded the prior differently
    meta["entropy"]["frequencies"][0][1] -= 1
    meta_path.write_text(json.dumps(meta))
    export_lite(load_model(path), path)
    assert json.loads(meta_path.read_text())["entropy"] == meta["entropy"]


def test_the_prior_s_logistic_never_overflows_and_keeps_the_tables(monkeypatch):
    """The cumulative distribution's logistic without overflow (logits far below zero used to warn), and the same tables as the plain formula."""
    import warnings

    from cae_compress.entropy_models import factorized

    x = np.concatenate([np.linspace(-1000, 1000, 20001), [-np.inf, np.inf, -745.2, 745.2]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow in exp would be a RuntimeWarning, hence an error here
        s = factorized.sigmoid(x)
    with np.errstate(over="ignore"):
        plain = 1.0 / (1.0 + np.exp(-x))
    assert np.all(np.isfinite(s)) and np.all((s >= 0) & (s <= 1)) and np.all(np.diff(s[:20001]) >= 0)
    assert np.array_equal(s[x >= 0], plain[x >= 0])  # the same numbers where the plain formula never overflowed
    assert np.allclose(s, plain, rtol=1e-15, atol=1e-300)  # below zero: to rounding, and tiny where exp(-x) overflowed to a plain 0
    if "channel-context" not in zoo.shipped_models():
        pytest.skip("no shipped channel-context model")
    prior = zoo.load("channel-context", backend="tensorflow").cae.prior  # logits far below zero at the ends of its +-255 grid
    stored = json.loads(str(ModelFiles(zoo.shipped_models()["channel-context"]).entropy()["z_tables"]))
    assert factorized.integer_tables(prior) == stored
    with np.errstate(over="ignore"):
        monkeypatch.setattr(factorized, "sigmoid", lambda v: 1.0 / (1.0 + np.exp(-v)))
        assert factorized.integer_tables(prior) == stored  # the tables of the plain formula: the golden files decode as before
