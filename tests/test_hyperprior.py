"""The hyperprior model: exact scale indices, streams in version 3 files, the same symbols on both backends."""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np
import pytest

from cae_compress import codec, zoo
from cae_compress.codecs import hyperprior as hypercodec
from cae_compress.entropy_models import gaussian
from cae_compress.io import format as fmt
from cae_compress.errors import CaeError
from cae_compress.codecs.layouts import window_grid
from conftest import lite_only
from cae_compress.latent.mean_scale import MeanScale


def sample_image():
    from PIL import Image

    from cae_compress.demo import SAMPLE

    with Image.open(SAMPLE) as im:
        return np.asarray(im.convert("RGB"))


def psnr(a, b):
    return 10 * np.log10(255.0**2 / np.mean((a.astype(float) - b.astype(float)) ** 2))


def _photo_like(h, w, seed=0):
    """Smooth colour fields with edges and a little texture: something a model can code."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([128 + 100 * np.sin(3 * xx + 2 * yy), 128 + 90 * np.cos(4 * yy), 90 + 60 * (xx > 0.5)], -1)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def tiny_hyperprior(tmp_path_factory):
    """An untrained small hyperprior model with its LiteRT files and integer parameters."""
    import keras

    from cae_compress.models.hyperprior import build_hyperprior_model, round_weights_to_float16
    from cae_compress.models.export import export_lite
    from cae_compress.models import save_model

    keras.utils.set_random_seed(5)
    model = build_hyperprior_model(8, 12, 6)
    k = len(model.lambdas)
    model.gain.assign(np.repeat(np.log(np.linspace(0.5, 8.0, k))[:, None], 12, axis=1))  # higher quality, finer steps
    model.inverse_gain.assign(-np.asarray(model.gain))
    round_weights_to_float16(model)
    path = tmp_path_factory.mktemp("hyper") / "tiny.keras"
    save_model(model, path)
    export_lite(model, path)
    return path


# ------------------------------------------------------------------ integer network
def _reference_index(z, layers, input_bits=0):
    """The integer scale network evaluated with Python integers, one output at a time, as a check."""
    x = np.asarray(z, object)
    last = len(layers) - 1
    for i, (kernel, bias, up) in enumerate(layers):
        k = kernel.shape[0]
        p = k // 2
        h, w, _ = x.shape
        xp = np.zeros((h + 2 * p, w + 2 * p, x.shape[2]), object)
        xp[p : p + h, p : p + w] = x
        kern = kernel.astype(np.int64).astype(object)
        acc = np.empty((h, w, kernel.shape[3]), object)
        for r in range(h):
            for c in range(w):
                patch = xp[r : r + k, c : c + k]
                acc[r, c] = np.tensordot(patch, kern, axes=([0, 1, 2], [0, 1, 2])) + bias.astype(np.int64).astype(object)
        if up > 1:
            acc = acc.reshape(h, w, up, up, -1).transpose(0, 2, 1, 3, 4).reshape(h * up, w * up, -1)
        wb, ab = gaussian.WEIGHT_BITS, gaussian.ACTIVATION_BITS
        if i == 0 and i < last:
            x = np.vectorize(lambda v: max(v >> (wb + input_bits - ab), 0), otypes=[object])(acc)
        elif i < last:
            x = np.vectorize(lambda v: max(v >> wb, 0), otypes=[object])(acc)
        else:
            bits = wb + (input_bits if i == 0 else ab)
            x = np.vectorize(lambda v: min(max((v + (1 << (bits - 1))) >> bits, 0), gaussian.LEVELS - 1), otypes=[object])(acc)
    return x.astype(np.int64)


def test_integer_scale_network_is_exact_integer_arithmetic():
    rng = np.random.default_rng(0)
    layers = [(rng.normal(0, 0.3, (3, 3, 5, 4 * 6)), rng.normal(0, 0.1, 4 * 6), 2), (rng.normal(0, 0.3, (3, 3, 6, 4 * 6)), rng.normal(0, 0.1, 4 * 6), 2),
              (rng.normal(0, 0.5, (1, 1, 6, 7)), rng.normal(0, 1, 7), 1)]
    net = gaussian.IntegerScaleNet.from_float(layers)
    z = rng.integers(-6, 7, (3, 4, 5))
    index = net(z)
    assert index.shape == (12, 16, 7)
    assert np.array_equal(index, _reference_index(z, net.layers))
    assert len(np.unique(index)) > 5  # the check is not passing on a constant


def test_a_context_enters_the_integer_scale_network_as_integers():
    """A context part's scale network: the hyper features (fixed point) beside decoded symbols, exact integer arithmetic too."""
    rng = np.random.default_rng(1)
    hyper = gaussian.IntegerScaleNet.from_float([(rng.normal(0, 0.3, (3, 3, 5, 4 * 6)), rng.normal(0, 0.1, 4 * 6), 2),
                                                 (rng.normal(0, 0.5, (1, 1, 6, 7)), rng.normal(0, 1, 7), 1)])
    z = rng.integers(-6, 7, (3, 4, 5))
    features = hyper.features(z)
    assert np.array_equal(hyper.index(features), hyper(z))  # split or whole: the same indices
    assert np.all(features == np.round(features)) and features.shape == (6, 8, 6)
    symbols = rng.integers(-9, 10, (6, 8, 4))  # a decoded slice of the codes, or the anchors of a checkerboard
    context = gaussian.IntegerScaleNet.from_float([(rng.normal(0, 0.05, (3, 3, 10, 8)), rng.normal(0, 0.1, 8), 1),
                                                   (rng.normal(0, 0.5, (1, 1, 8, 7)), rng.normal(0, 1, 7), 1)], input_bits=gaussian.ACTIVATION_BITS)
    inputs = np.concatenate([features, gaussian.fixed_point(symbols)], axis=-1)
    index = context(inputs)
    reference = _reference_index(inputs.astype(np.int64), context.layers, gaussian.ACTIVATION_BITS)
    assert np.array_equal(index, reference) and len(np.unique(index)) > 5
    again = gaussian.IntegerScaleNet.from_arrays(context.arrays("ctx"), "ctx")  # stored and read back, input bits included
    assert again.input_bits == gaussian.ACTIVATION_BITS and np.array_equal(again(inputs), index)


def test_gaussian_tables_are_exact_and_cover_ten_scales():
    tables = gaussian.gaussian_tables()
    scales = gaussian.scale_table()
    assert len(tables["frequencies"]) == gaussian.LEVELS
    for s, r, f in zip(scales, tables["half_ranges"], tables["frequencies"]):
        assert f.min() >= 1 and f.sum() == 1 << gaussian.PRECISION and len(f) == 2 * r + 1
        assert r >= 10 * s
        assert f[r] == f.max()  # the mode is zero
    assert math.isclose(scales[0], 0.11) and math.isclose(scales[-1], 256.0)


# -------------------------------------------------------------- codec and backends
def test_round_trip_on_both_backends_gives_the_same_symbols(tiny_hyperprior):
    lite = zoo.load(model_path=tiny_hyperprior, backend="litert")
    keras_model = zoo.load(model_path=tiny_hyperprior, backend="tensorflow")
    assert lite.fingerprint == keras_model.fingerprint
    img = _photo_like(70, 90)
    for q in (0, 50, 100):
        from_lite = codec.encode(lite, img, quality=q)
        from_keras = codec.encode(keras_model, img, quality=q)
        assert from_lite[4] == 3
        for data in (from_lite, from_keras):  # either file, either decoder: the symbol checksum must hold
            a, b = codec.decode(lite, data), codec.decode(keras_model, data)
            assert a.shape == img.shape and np.abs(a.astype(int) - b.astype(int)).max() <= 1


def _int8_tensors(path):
    from ai_edge_litert.interpreter import Interpreter

    return sum(t["dtype"] == np.int8 for t in Interpreter(model_path=str(path)).get_tensor_details())


def test_litert_analysis_is_an_int8_head_and_a_float_tail(tiny_hyperprior):
    import json

    from cae_compress.runtime.files import ModelFiles

    files = ModelFiles(tiny_hyperprior)
    enc, dec, tail = files.tflite("encoder"), files.tflite("decoder"), files.tail("encoder")
    assert json.loads(files.lite_json.read_text())["parts"] == {"encoder": [enc.name, tail.name]}
    assert _int8_tensors(enc) > 0  # the head runs on int8 weights
    assert _int8_tensors(tail) == 0 and _int8_tensors(dec) == 0  # the rest of the analysis and the synthesis stay float


def test_litert_synthesis_is_one_graph_of_static_shapes(tiny_hyperprior):
    """GDN exported as 1x1 convolutions: no run-time shape ops (they split the graph and slow its first call), same pixels as Keras."""
    from ai_edge_litert.interpreter import Interpreter

    from cae_compress.runtime.files import ModelFiles

    interp = Interpreter(model_path=str(ModelFiles(tiny_hyperprior).tflite("decoder")))
    ops = {op["op_name"] for op in interp._get_ops_details()}
    assert not ops & {"SHAPE", "GATHER", "PACK", "RESHAPE", "FULLY_CONNECTED"} and "CONV_2D" in ops
    img = _photo_like(64, 128, seed=2)
    lite, keras_model = (zoo.load(model_path=tiny_hyperprior, backend=b) for b in ("litert", "tensorflow"))
    data = codec.encode(lite, img, quality=60)
    assert np.abs(codec.decode(lite, data).astype(int) - codec.decode(keras_model, data).astype(int)).max() <= 1


def test_files_of_either_encoder_decode_to_identical_symbols_with_either_decoder(tiny_hyperprior, monkeypatch):
    """The int8 analysis (LiteRT) and the float one (TensorFlow) make slightly different codes; a file of either is decoded to the same symbols by both."""
    lite = zoo.load(model_path=tiny_hyperprior, backend="litert")
    keras_model = zoo.load(model_path=tiny_hyperprior, backend="tensorflow")
    seen = []
    original = MeanScale.decode
    monkeypatch.setattr(MeanScale, "decode", lambda self, *a: (lambda out: seen.append(out[0]) or out)(original(self, *a)))
    img = _photo_like(70, 90)
    symbols = {}
    for enc_name, enc in (("int8", lite), ("float", keras_model)):
        data = codec.encode(enc, img, quality=80)
        for dec_name, dec in (("int8", lite), ("float", keras_model)):
            seen.clear()
            codec.decode(dec, data)
            symbols[enc_name, dec_name] = np.concatenate([s.ravel() for s in seen])
    for enc_name in ("int8", "float"):
        assert np.array_equal(symbols[enc_name, "int8"], symbols[enc_name, "float"])
    a, b = symbols["int8", "int8"], symbols["float", "float"]
    assert a.size == b.size and np.count_nonzero(a) > 0.1 * a.size
    assert 0.9 < np.mean(a == b) < 1  # the two analyses differ, a little


def test_a_flipped_symbol_is_one_clear_error(tiny_hyperprior):
    model = zoo.load(model_path=tiny_hyperprior)
    data = codec.encode(model, _photo_like(64, 64), quality=60)
    header, record, streams = fmt.unpack_streams(data)
    quality, crc, band = hypercodec.RECORD.unpack(record)
    bad = fmt.pack_streams(header, hypercodec.RECORD.pack(quality, crc ^ 1, band), streams)
    with pytest.raises(CaeError, match="checksum"):
        codec.decode(model, bad, "x.cae")
    zero = fmt.pack_streams(header, hypercodec.RECORD.pack(quality, crc, 0), streams)
    with pytest.raises(CaeError, match="band height 0"):
        codec.decode(model, zero, "x.cae")


def test_band_scale_indices_are_exactly_the_whole_images(tiny_hyperprior):
    """Each band's hyper-synthesis sees HYPER_MARGIN rows of context: its scale indices equal the whole image's, bit for bit."""
    c = zoo.load(model_path=tiny_hyperprior)
    y = c.analyse(_photo_like(11 * hypercodec.PAD, 5 * hypercodec.PAD, seed=3)).y * c.gains(80)[0]
    z_float = np.asarray(c.nets["hyper_encoder"](y[None]))[0]
    rng = np.random.default_rng(3)
    z = (np.rint(z_float) + rng.integers(-3, 4, z_float.shape)).astype(np.int32)  # varied symbols, so the indices vary too
    assert z.shape[:2] == (11, 5)
    mean, index = c.latent.parameters(z)
    for band in (1, 2, 5):
        parts = list(c._bands(z, band))
        assert [p[0] for p in parts] == list(range(0, 11, band))
        assert np.array_equal(np.concatenate([p[2][1] for p in parts]), index)
        assert np.allclose(np.concatenate([p[2][0] for p in parts]), mean, atol=1e-5)
    assert len(np.unique(index)) > 3


def test_banded_stream_decodes_band_by_band_to_the_whole_images_pixels(shipped, monkeypatch):
    """A tall image coded in one-row bands decodes (checksum held) with a few bands in memory, to the pixels of a one-band file.

    The hyperprior's means and scales depend on the hyper-codes alone; the channel context's mean networks see a band's own
    rows, so its bands of other heights give other (equally valid) files: this holds for the hyperprior only."""
    if shipped.arch != "hyperprior":
        pytest.skip("a channel context's means depend on the band height")
    c = shipped
    img = _photo_like(1700, 70, seed=4)
    y = c.analyse(img).y * c.gains(60)[0]
    z = np.asarray(c.nets["hyper_encoder"](y[None]))[0]
    streams, record = c.code(y, z, 60, band=1)
    one_streams, one_record = c.code(y, z, 60, band=99)
    assert hypercodec.RECORD.unpack(record)[2] == 1 and hypercodec.RECORD.unpack(one_record)[2] == 99
    held = []
    real_call = hypercodec._BandRows.__call__

    def spy(self, a, b):
        out = real_call(self, a, b)
        held.append(sum(len(r) for _, r in self.held))
        return out

    monkeypatch.setattr(hypercodec._BandRows, "__call__", spy)
    banded = c.decompress(streams, record, *img.shape[:2])
    monkeypatch.undo()
    whole = c.decompress(one_streams, one_record, *img.shape[:2])
    assert banded.shape == img.shape and np.abs(banded.astype(int) - whole.astype(int)).max() <= 1
    assert psnr(banded, img) > 30
    rows = -(-1700 // hypercodec.PAD) * hypercodec.PAD // hypercodec.STRIDE
    tallest = max(hi - lo for _, _, lo, hi in window_grid(rows, 8, hypercodec.WINDOW_AREA, hypercodec.MARGIN)[0])
    assert max(held) <= tallest + 2 * hypercodec.HYPER_STRIDE < rows


def test_v3_layout_fuzz_gives_clean_errors(tiny_hyperprior):
    """Stream counts and lengths changed under a valid CRC: a clean error or an image, never a crash."""
    model = zoo.load(model_path=tiny_hyperprior)
    data = codec.encode(model, _photo_like(40, 50), quality=30)
    rng = np.random.default_rng(1)
    for _ in range(150):
        payload = bytearray(data[fmt.HEADER_SIZE :])
        pos = int(rng.integers(0, len(payload)))
        payload[pos] = int(rng.integers(0, 256))
        head = bytearray(data[: fmt.HEADER_SIZE])
        struct.pack_into("<Q", head, fmt.HEADER_SIZE - 12, len(payload))
        crc = zlib.crc32(bytes(payload), zlib.crc32(bytes(head[:-4]))) & 0xFFFFFFFF
        struct.pack_into("<I", head, fmt.HEADER_SIZE - 4, crc)
        try:
            out = codec.decode(model, bytes(head) + bytes(payload), "f.cae")
            assert out.shape == (40, 50, 3)
        except CaeError as exc:
            assert str(exc).startswith("f.cae")


def test_quality_is_checked(tiny_hyperprior):
    model = zoo.load(model_path=tiny_hyperprior)
    with pytest.raises(CaeError, match="quality"):
        codec.encode(model, _photo_like(16, 16), quality=101)


# ------------------------------------------------------------------- shipped model
@pytest.fixture(scope="module", params=["channel-context", "hyperprior"])
def shipped(request):
    """The shipped models of the hyperprior family: the default (channel-context) and the hyperprior before it."""
    if request.param not in zoo.shipped_models():
        pytest.skip(f"no shipped {request.param} model")
    return zoo.load(request.param)


def test_the_channel_context_model_is_the_default():
    if "channel-context" not in zoo.shipped_models():
        pytest.skip("no shipped channel-context model")
    assert zoo.default_model_name() == "channel-context"


def test_shipped_model_codes_the_sample_well(shipped):
    img = sample_image()
    sizes = []
    for q in (0, 50, 100):
        data = codec.encode(shipped, img, quality=q)
        out = codec.decode(shipped, data)
        sizes.append(len(data))
        assert psnr(img, out) > (27 if q == 0 else 30)  # against the original pixels
    assert sizes[0] < sizes[1] < sizes[2]


def test_shipped_model_smooth_images_have_no_block_grid(shipped):
    """A gradient, a dark sky with stars, a flat wall with faint noise, at the lowest quality."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:192, 0:256]
    gradient = np.stack([xx, yy, (xx + yy) / 2], -1) * (200 / 256) + 20
    sky = np.full((192, 256, 3), (8, 10, 25), float)
    stars = rng.integers(0, 192 * 256, 12)
    sky.reshape(-1, 3)[stars] = 230
    wall = np.full((192, 256, 3), (180, 170, 150), float) + rng.normal(0, 2, (192, 256, 3))
    for img in (gradient, sky, wall):
        img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
        out = codec.decode(shipped, codec.encode(shipped, img, quality=0)).astype(float)
        jumps = np.abs(np.diff(out, axis=1)).mean(axis=(0, 2))  # mean jump between columns c and c+1
        borders = jumps[15::16].mean()
        inside = np.delete(jumps, np.s_[15::16]).mean()
        assert borders < 1.5 * inside + 0.5, (borders, inside)
        assert np.abs(out - img).mean() < 4


def test_shipped_model_same_symbols_across_backends_on_the_sample(shipped):
    if lite_only(shipped.name):
        pytest.skip(f"{shipped.name} ships its LiteRT files only")
    keras_model = zoo.load(shipped.name, backend="tensorflow")
    img = sample_image()[:200, :300]
    for q in (10, 75):
        for enc in (shipped, keras_model):
            data = codec.encode(enc, img, quality=q)
            a, b = codec.decode(shipped, data), codec.decode(keras_model, data)
            assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_cli_quality_and_bpp(tiny_hyperprior, tmp_path):
    import subprocess
    import sys

    from PIL import Image

    Image.fromarray(_photo_like(96, 128)).save(tmp_path / "a.png")

    def encode(*flags):
        out = tmp_path / "a.cae"
        r = subprocess.run([sys.executable, "-m", "cae_compress", "encode", str(tmp_path / "a.png"), "-o", str(out), "-f", "--model-path", str(tiny_hyperprior), *flags],
                           capture_output=True, text=True, timeout=120)
        return r, (out.stat().st_size if out.exists() else None)

    (_, low), (_, high) = encode("-q", "0"), encode("-q", "100")
    assert low < high
    r, size = encode("--bpp", str(8 * (low + high) / 2 / (96 * 128)))
    assert r.returncode == 0 and r.stderr == "" and low <= size <= (low + high) / 2
    r, size = encode("--bpp", "0.0001")
    assert r.returncode == 0 and "no quality fits" in r.stderr and size == low
    r, _ = encode("-q", "20", "--bpp", "1")
    assert r.returncode == 2 and r.stderr.strip() == "cae: error: --quality and --bpp both set the quality: give one"


def test_cae_train_hyperprior_lowers_the_loss_and_the_run_encodes(tiny_npz, tmp_path):
    """``cae train --model hyperprior``: the loss goes down, and the run's model goes through encode/decode."""
    from cae_compress.training.train import TrainConfig, train

    run = tmp_path / "run"
    result = train(TrainConfig(model="hyperprior", dataset=str(tiny_npz), code_length=12, filters=8, epochs=3, batch_size=32, learning_rate=3e-3), run_dir=run, quiet=True)
    losses = result.history["loss"]
    assert losses[-1] < losses[0]
    assert result.test["bpp"] > 0 and "lambda" in result.test
    model = zoo.load(model_path=run)  # LiteRT files and integer parameters exported by the run
    img = _photo_like(40, 40)
    out = codec.decode(model, codec.encode(model, img, quality=50))
    assert out.shape == img.shape


def test_a_huge_declared_size_is_refused_at_once(tiny_hyperprior, tmp_path):
    """A header that declares 16384x16384 over a small payload: one line, exit 2, no output, under a second."""
    import subprocess
    import sys
    import time

    model = zoo.load(model_path=tiny_hyperprior)
    header, record, streams = fmt.unpack_streams(codec.encode(model, _photo_like(32, 32), quality=10))
    import dataclasses

    big = fmt.pack_streams(dataclasses.replace(header, width=16384, height=16384), record, streams)
    (tmp_path / "big.cae").write_bytes(big)
    with pytest.raises(CaeError, match="decode budget"):
        t0 = time.perf_counter()
        codec.decode(model, big, "big.cae")
    assert time.perf_counter() - t0 < 1.0
    r = subprocess.run([sys.executable, "-m", "cae_compress", "decode", str(tmp_path / "big.cae"), "--model-path", str(tiny_hyperprior)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "decode budget" in r.stderr
    assert not (tmp_path / "big.png").exists()


@pytest.mark.parametrize("rows, cols, area", [(188, 252, 600), (32, 48, 600), (5, 300, 100), (7, 7, 600), (40, 3, 30)])
def test_window_grid_tiles_the_codes_with_contexts_of_one_shape(rows, cols, area):
    """Windows partition each side; every context holds its window and the margin (or the edge), all contexts one shape, within the area."""
    margin = hypercodec.MARGIN
    grid = window_grid(rows, cols, area, margin)
    for n, spans in zip((rows, cols), grid):
        assert [a for a, *_ in spans] == [0] + [b for _, b, *_ in spans[:-1]] and spans[-1][1] == n
        assert all(lo <= max(0, a - margin) and hi >= min(n, b + margin) and 0 <= lo and hi <= n for a, b, lo, hi in spans)
        assert len({hi - lo for *_, lo, hi in spans}) == 1
        assert max(b - a for a, b, *_ in spans) - min(b - a for a, b, *_ in spans) <= 1
    ctx = [spans[0][3] - spans[0][2] for spans in grid]
    assert ctx[0] * ctx[1] <= max(area, (2 * margin + 1) ** 2)


def test_synthesis_windows_give_the_whole_images_pixels(shipped, monkeypatch):
    """Small windows with their margins decode to exactly the pixels of one window over the whole image."""
    img = _photo_like(300, 420, seed=6)
    data = codec.encode(shipped, img, quality=70)
    monkeypatch.setattr(hypercodec, "WINDOW_AREA", 10**6)
    whole = codec.decode(shipped, data)
    monkeypatch.setattr(hypercodec, "WINDOW_AREA", 120)
    windowed = codec.decode(shipped, data)
    assert len(window_grid(20, 28, 120, hypercodec.MARGIN)[1]) > 1
    assert np.array_equal(windowed, whole)
