"""Using .cae from Python: the bytes API, the Pillow plugin, ``cae info`` and ``cae encode --jobs``."""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import cae_compress
from cae_compress.cli import app
from cae_compress.errors import CaeError
from conftest import smooth_images

GOLDEN = Path(__file__).parent / "golden"
INDEX = json.loads((GOLDEN / "golden.json").read_text())


def psnr(a, b):
    return 10 * np.log10(255.0**2 / np.mean((np.asarray(a, float) - np.asarray(b, float)) ** 2))


def _photo(h=96, w=128, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([128 + 100 * np.sin(3 * xx + 2 * yy), 128 + 90 * np.cos(4 * yy), 90 + 60 * (xx > 0.5)], -1) + rng.normal(0, 4, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------- the bytes API
def test_compress_and_decompress_arrays_and_pil_images():
    img = _photo()
    data = cae_compress.compress(img, quality=60)
    assert data[:4] == b"\x89CAE"
    out = cae_compress.decompress(data)
    assert out.shape == img.shape and out.dtype == np.uint8 and psnr(out, img) > 30
    assert cae_compress.compress(Image.fromarray(img), quality=60) == data  # a PIL image: the same file
    gray = cae_compress.decompress(cae_compress.compress(img[..., 0]))  # an HxW array: grayscale in, grayscale out
    assert gray.shape == (96, 128, 1) and psnr(gray[..., 0], img[..., 0]) > 30
    assert len(cae_compress.compress(img, quality=10)) < len(data) < len(cae_compress.compress(img, quality=95))


def test_compress_to_a_size():
    img = _photo(128, 128, seed=1)
    data = cae_compress.compress(img, bpp=0.5)
    assert 8 * len(data) / img[..., 0].size <= 0.5
    assert 8 * len(cae_compress.compress(img, bpp=0.5)) == 8 * len(data)  # deterministic
    with pytest.warns(UserWarning, match="no quality fits"):
        cae_compress.compress(img, bpp=0.001)


def test_api_errors_name_the_python_parameters(tmp_path):
    """Bad values raise ValueError (CaeError is one), bad types TypeError, each naming the parameter, never a CLI flag."""
    img = _photo(32, 32)
    compress, decompress = cae_compress.compress, cae_compress.decompress
    cases = [
        (lambda: compress(img.astype(np.float32)), ValueError, "image: an array must be HxW or HxWxC uint8 (C 1-4), not a float32 array"),
        (lambda: compress(img, quality=101), ValueError, "quality must be between 0 and 100, got 101"),
        (lambda: compress(img, quality=200), ValueError, "quality must be between 0 and 100, got 200"),
        (lambda: compress(img, quality=37.5), ValueError, "quality must be a whole number from 0 to 100 (a file records its quality as an integer"),
        (lambda: compress(img, quality="high"), TypeError, "quality must be a whole number from 0 to 100, not str"),
        (lambda: compress(img, quality=5, bpp=1.0), ValueError, "quality and bpp both set the quality: give one"),
        (lambda: compress(img, bpp=0), ValueError, "bpp must be positive, got 0.0"),
        (lambda: compress(img, bpp="0.5"), TypeError, "bpp must be a number of bits per pixel, not str"),
        (lambda: compress(img, effort=12), ValueError, "effort must be between 1 and 9, got 12"),
        (lambda: compress(img, model="cifar10-64", quality=20), ValueError, "quality needs a model with a continuous quality"),
        (lambda: compress(img, model="cifar10-64", bpp=0.5), ValueError, "bpp needs a model with a continuous quality"),
        (lambda: compress(img, model="cifar10-64", effort=3), ValueError, "effort above 1 refines the codes"),
        (lambda: compress(img, model="nope"), ValueError, "unknown model 'nope'"),
        (lambda: compress(img, model=3), TypeError, "model must be a shipped model's name, a path or a loaded model"),
        (lambda: compress(42), TypeError, "image must be a path, a binary file object, the bytes of an image file, a PIL image or a uint8 array, not int"),
        (lambda: compress(io.StringIO("text")), TypeError, "image: a file object must be opened in binary mode ('rb')"),
        (lambda: compress(b"not an image"), ValueError, "<bytes>: not an image Pillow can read"),
        (lambda: compress(str(tmp_path / "missing.png")), FileNotFoundError, "missing.png"),
        (lambda: decompress(b"not a cae file"), ValueError, "not a .cae file"),
        (lambda: decompress(cae_compress.compress(img)[:-3]), ValueError, "truncated"),
        (lambda: decompress(3.5), TypeError, "data must be .cae bytes, a path or a binary file object, not float"),
        (lambda: decompress(tmp_path / "missing.cae"), FileNotFoundError, "missing.cae"),
        (lambda: decompress(b"", max_pixels="many"), TypeError, "max_pixels must be an integer, not str"),
        (lambda: cae_compress.open(7), TypeError, "source must be .cae bytes, a path or a binary file object, not int"),
    ]
    for call, kind, message in cases:
        with pytest.raises(kind, match=re.escape(message)) as info:
            call()
        assert "--" not in str(info.value), str(info.value)  # the Python parameter, not the CLI flag
    assert issubclass(CaeError, ValueError)


def test_whole_qualities_of_any_number_type_encode_as_that_integer(tmp_path):
    """A fractional quality is refused (the file records an integer); 40.0 and numpy's 40 are quality 40, and the file says 40."""
    from cae_compress.api import file_info

    img = _photo(32, 48)
    data = cae_compress.compress(img, quality=40)
    assert cae_compress.compress(img, quality=40.0) == data == cae_compress.compress(img, quality=np.int64(40))
    assert data != cae_compress.compress(img, quality=41)
    (tmp_path / "q.cae").write_bytes(data)
    assert file_info(str(tmp_path / "q.cae"))["quality"] == 40


def test_compress_and_decompress_take_paths_file_objects_and_bytes(tmp_path):
    img = _photo(40, 56, seed=5)
    Image.fromarray(img).save(tmp_path / "x.png")
    data = cae_compress.compress(img, quality=40)
    assert cae_compress.compress(str(tmp_path / "x.png"), quality=40) == data
    assert cae_compress.compress(tmp_path / "x.png", quality=40) == data
    assert cae_compress.compress((tmp_path / "x.png").read_bytes(), quality=40) == data
    with open(tmp_path / "x.png", "rb") as f:
        assert cae_compress.compress(f, quality=40) == data
    (tmp_path / "x.cae").write_bytes(data)
    expected = cae_compress.decompress(data)
    assert expected.shape == img.shape and psnr(expected, img) > 28
    with open(tmp_path / "x.cae", "rb") as f:
        sources = [str(tmp_path / "x.cae"), tmp_path / "x.cae", f, bytearray(data), memoryview(data)]
        for source in sources:
            np.testing.assert_array_equal(cae_compress.decompress(source), expected)
    for source in (str(tmp_path / "x.cae"), tmp_path / "x.cae", data):
        np.testing.assert_array_equal(np.asarray(cae_compress.open(source)), expected)


def test_threads_share_the_cached_models_and_get_the_files_one_thread_gets():
    images = [_photo(64, 64 + 16 * i, seed=i) for i in range(6)]
    alone = [cae_compress.compress(im, quality=40) for im in images]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda im: cae_compress.compress(im, quality=40), images))
        decoded = list(pool.map(cae_compress.decompress, together))
    assert together == alone
    assert all(psnr(d, im) > 28 for d, im in zip(decoded, images))


def test_light_install_opens_a_golden_file_with_pillow(light_python, tmp_path):
    name = "0.3.0-hyperprior.cae"
    code = (
        "import sys\n"
        "from PIL import Image\n"
        "import cae_compress.pillow\n"
        f"Image.open({str(GOLDEN / name)!r}).save('x.png')\n"
        "assert sys.modules.get('tensorflow') is None and Image.MAX_IMAGE_PIXELS == 89478485  # blocked: never imported\n"
    )
    r = light_python(code, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    pixels = np.asarray(Image.open(tmp_path / "x.png"))
    assert hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest() == INDEX[name]["decoded_sha256"]


# ---------------------------------------------------------------- the Pillow plugin
def test_pillow_opens_golden_files_lazily_and_saves_cae(tmp_path):
    import cae_compress.pillow  # noqa: F401

    for name in ("0.3.0-hyperprior.cae", "0.1.0-rate-q3.cae", "0.3.0-cifar10-64.cae"):
        im = Image.open(GOLDEN / name)
        assert im.format == "CAE" and im.size == tuple(INDEX[name]["shape"][1::-1]) and im.mode == "RGB"
        assert im._im is None  # the header only, so far
        pixels = np.asarray(im)
        assert hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest() == INDEX[name]["decoded_sha256"]
    img = _photo(120, 160, seed=3)
    Image.fromarray(img).save(tmp_path / "a.cae", quality=70)
    Image.fromarray(img).save(tmp_path / "b.cae", quality=10)
    assert (tmp_path / "b.cae").stat().st_size < (tmp_path / "a.cae").stat().st_size
    assert psnr(Image.open(tmp_path / "a.cae"), img) > 30
    Image.fromarray(img).convert("RGBA").save(tmp_path / "c.cae", bpp=0.4)  # alpha kept (opaque: 2 bytes), size as asked
    assert 8 * (tmp_path / "c.cae").stat().st_size / (120 * 160) <= 0.4
    thumb = Image.open(tmp_path / "a.cae")
    thumb.thumbnail((40, 40))
    assert thumb.size == (40, 30)
    assert Image.MIME["CAE"] == "image/x-cae" and Image.registered_extensions()[".cae"] == "CAE"
    assert cae_compress.open((tmp_path / "a.cae").read_bytes()).size == (160, 120)


def test_pillow_hands_bad_and_truncated_files_on_and_keeps_its_limit(tmp_path):
    import cae_compress.pillow  # noqa: F401

    data = (GOLDEN / "0.3.0-hyperprior.cae").read_bytes()
    with pytest.raises(Image.UnidentifiedImageError):  # header cut short: not ours, and no other plugin's either
        Image.open(io.BytesIO(data[:40]))
    cut = Image.open(io.BytesIO(data[:-10]))  # the header is fine; the pixels are not there
    with pytest.raises(OSError, match="truncated"):
        cut.load()
    Image.fromarray(_photo(20, 20)).save(tmp_path / "p.png")
    with pytest.raises(Image.UnidentifiedImageError):
        Image.open(tmp_path / "p.png", formats=["CAE"])  # a PNG given to our opener alone
    assert Image.open(tmp_path / "p.png").format == "PNG"  # and the PNG plugin still gets it
    assert Image.MAX_IMAGE_PIXELS == 89478485  # importing the package changed nothing of Pillow's
    from dataclasses import replace

    from cae_compress.io import format as fmt

    header, record, streams = fmt.unpack_streams(data)
    huge = fmt.pack_streams(replace(header, width=15000, height=15000), record, streams)  # 225 MP: within the format, over Pillow's 179
    with pytest.raises(Image.DecompressionBombError):  # Pillow's own limit, from the header
        Image.open(io.BytesIO(huge))


# ------------------------------------------------------------------------ cae info
def test_info_reads_headers_and_never_decodes(monkeypatch):
    from cae_compress import codec

    monkeypatch.setattr(codec, "decode", lambda *a, **k: pytest.fail("cae info decoded a file"))
    runner = CliRunner()
    r = runner.invoke(app, ["info", "--json", str(GOLDEN / "0.3.0-hyperprior.cae"), str(GOLDEN / "0.1.0-tiny-dense.cae")])
    assert r.exit_code == 0, r.output
    hyper, dense = json.loads(r.stdout)
    assert (hyper["version"], hyper["model"], hyper["model_here"], hyper["quality"]) == (3, "hyperprior", True, 50)
    assert (hyper["width"], hyper["height"], hyper["channels"]) == (45, 37, 3)
    assert sum(hyper["streams"]) + hyper["record_bytes"] + 2 + 4 * len(hyper["streams"]) + 76 == hyper["bytes"] == INDEX["0.3.0-hyperprior.cae"]["bytes"]
    assert hyper["bpp"] == pytest.approx(8 * hyper["bytes"] / (45 * 37)) and hyper["crc32"] == "ok"
    assert (dense["version"], dense["model_here"], dense["dtype"]) == (1, False, "uint8")
    r = runner.invoke(app, ["info", str(GOLDEN / "0.1.0-rate-q3.cae")])
    assert r.exit_code == 0 and "version 2" in r.stdout and "rate-q3" in r.stdout and "here: yes" in r.stdout


def test_info_of_a_bad_file_is_one_line(tmp_path):
    data = bytearray((GOLDEN / "0.3.0-hyperprior.cae").read_bytes())
    data[100] ^= 1
    (tmp_path / "bad.cae").write_bytes(bytes(data))
    r = CliRunner().invoke(app, ["info", str(tmp_path / "bad.cae"), str(GOLDEN / "0.3.0-hyperprior.cae")])
    assert r.exit_code == 2
    assert r.stderr.strip().splitlines() == [f"cae: error: {tmp_path / 'bad.cae'}: checksum mismatch, the file is corrupted"]
    assert "0.3.0-hyperprior.cae: 204 bytes" in r.stdout  # the good file is still described


# ------------------------------------------------------------------- encode --jobs
def test_jobs_encode_a_tree_in_worker_processes_to_the_same_files(tmp_path):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    for i, rel in enumerate(["a.png", "b.png", "sub/c.png", "sub/d.png"]):
        Image.fromarray(smooth_images(1, 40 + 8 * i, seed=i)[0]).save(tmp_path / "in" / rel)
    (tmp_path / "in" / "bad.png").write_bytes(b"not an image")
    runner = CliRunner()
    one = runner.invoke(app, ["encode", "-r", str(tmp_path / "in"), "-o", str(tmp_path / "one")])
    two = runner.invoke(app, ["encode", "-r", str(tmp_path / "in"), "-o", str(tmp_path / "two"), "--jobs", "2"])
    assert one.exit_code == two.exit_code == 2  # the bad file
    assert two.stderr.count("cae: error:") == 1 and "bad.png: not an image Pillow can read" in two.stderr
    assert "4 of 5 files" in two.stderr
    for rel in ["a.cae", "b.cae", "sub/c.cae", "sub/d.cae"]:
        assert (tmp_path / "two" / rel).read_bytes() == (tmp_path / "one" / rel).read_bytes()
    r = runner.invoke(app, ["encode", "-r", str(tmp_path / "in"), "-o", str(tmp_path / "x"), "--jobs", "0"])
    assert r.exit_code == 2 and "--jobs must be at least 1" in r.stderr
