"""`cae decode --fast`: the same files through the shipped channel-context model's cheaper synthesis, from the CLI, Python and Pillow.

The symbols (and their CRC-32) are the file's as ever; only the synthesis
that turns them into pixels is narrower (128/64/32 channels).  A model
without a fast synthesis decodes in full, with a warning.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from PIL import Image

import cae_compress
from cae_compress import codec, zoo
from cae_compress.errors import CaeError


def sample_image():
    from cae_compress.demo import SAMPLE

    with Image.open(SAMPLE) as im:
        return np.asarray(im.convert("RGB"))

pytestmark = pytest.mark.skipif("channel-context" not in zoo.shipped_models(), reason="no shipped channel-context model")


def psnr(a, b) -> float:
    return float(10 * np.log10(255**2 / np.mean((a.astype(float) - b) ** 2)))


@pytest.fixture(scope="module")
def model():
    return zoo.load("channel-context")


@pytest.fixture(scope="module")
def photo():
    return sample_image()[40:168, 60:252].copy()  # 128x192: two by three hyper-code blocks


@pytest.fixture(scope="module")
def files(model, photo):
    return {q: codec.encode(model, photo, quality=q) for q in (None, 100)}


def cae(*args, cwd):
    return subprocess.run([sys.executable, "-m", "cae_compress", *args], cwd=cwd, capture_output=True, text=True, timeout=180)


def test_the_fast_synthesis_decodes_the_same_files_a_little_less_faithfully(model, photo, files):
    assert model.fast
    for q, data in files.items():
        full, fast = codec.decode(model, data), codec.decode(model, data, fast=True)
        assert fast.shape == full.shape == photo.shape and not np.array_equal(fast, full)
        # the same codes through a narrower synthesis: close to the full one's picture, a little further from the original
        assert psnr(photo, fast) > psnr(photo, full) - 1.0 and psnr(photo, fast) > (28 if q is None else 32)
        assert psnr(full, fast) > 33


def test_fast_decoding_checks_the_symbols_as_ever(model, files):
    data = bytearray(files[None])
    record_at = 76 + 1  # the payload's record: quality, then the symbols' CRC-32
    data[record_at + 1] ^= 0xFF
    import zlib

    data[72:76] = (zlib.crc32(bytes(data[:72]) + bytes(data[76:])) & 0xFFFFFFFF).to_bytes(4, "little")  # a valid file CRC over a wrong record
    with pytest.raises(CaeError, match="fail their checksum"):
        codec.decode(model, bytes(data), fast=True)


def test_both_backends_decode_fast_alike(model, files):
    keras_model = zoo.load("channel-context", backend="tensorflow")
    assert keras_model.fast
    for data in files.values():
        a, b = codec.decode(model, data, fast=True), codec.decode(keras_model, data, fast=True)
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_python_and_pillow_decode_fast(files, tmp_path):
    import cae_compress.pillow  # noqa: F401

    data = files[None]
    fast = cae_compress.decompress(data, fast=True)
    assert np.array_equal(fast, codec.decode(zoo.load("channel-context"), data, fast=True))
    assert not np.array_equal(fast, cae_compress.decompress(data))
    path = tmp_path / "a.cae"
    path.write_bytes(data)
    with Image.open(path) as im:  # Image.draft: Pillow's convention for a cheaper decode
        assert im.draft("RGB", (64, 48)) == ("RGB", (0, 0, 192, 128))
        assert np.array_equal(np.asarray(im), fast) and im.info["synthesis"] == "fast"
    with Image.open(path) as im:  # thumbnail() asks for a draft itself
        im.thumbnail((96, 64))
        assert im.size == (96, 64) and im.info["synthesis"] == "fast"
    with Image.open(path) as im:
        im.load()
        assert im.info["synthesis"] == "full" and np.array_equal(np.asarray(im), cae_compress.decompress(data))


def test_cli_decode_fast_and_info(files, tmp_path):
    (tmp_path / "a.cae").write_bytes(files[None])
    r = cae("decode", "--fast", "a.cae", "-o", "fast.png", cwd=tmp_path)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    with Image.open(tmp_path / "fast.png") as im:
        assert np.array_equal(np.asarray(im), cae_compress.decompress(files[None], fast=True))
    r = cae("info", "a.cae", cwd=tmp_path)
    assert r.returncode == 0 and "fast:      yes" in r.stdout


def test_a_model_without_a_fast_synthesis_decodes_in_full_with_a_warning(tmp_path):
    if "hyperprior" not in zoo.shipped_models():
        pytest.skip("no shipped hyperprior model")
    img = sample_image()[:64, :64].copy()
    data = cae_compress.compress(img, model="hyperprior")
    with pytest.warns(UserWarning, match="model 'hyperprior' has no fast synthesis here; decoded with its full synthesis"):
        fast = cae_compress.decompress(data, fast=True)
    assert np.array_equal(fast, cae_compress.decompress(data))
    (tmp_path / "h.cae").write_bytes(data)
    (tmp_path / "g.cae").write_bytes(data)
    r = cae("decode", "--fast", "h.cae", "g.cae", "-o", "out/", cwd=tmp_path)
    warnings_seen = [line for line in r.stderr.splitlines() if line]
    assert r.returncode == 0 and warnings_seen == ["cae: warning: model 'hyperprior' has no fast synthesis here; decoded with its full synthesis"]
    with Image.open(tmp_path / "out" / "h.png") as im:
        assert np.array_equal(np.asarray(im), fast)
    r = cae("info", "h.cae", cwd=tmp_path)
    assert "fast:      no fast synthesis here" in r.stdout
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(CaeError, match="has no fast synthesis"):  # the codec itself refuses; the container never asks it
            zoo.load("hyperprior").decompress([b"", b""], bytes(6), 16, 16, fast=True)
