"""The .cae container: every field, every refusal, and a fuzz test of mutated files."""

import lzma
import random
import struct
import zlib

import numpy as np
import pytest

from cae_compress import codec
from cae_compress.io import format as fmt
from cae_compress.errors import CaeError


def _header(**kw):
    base = dict(width=33, height=20, channels=3, tile_height=16, tile_width=16, code_length=5, model_name="m", fingerprint=b"12345678")
    base.update(kw)
    return fmt.Header(**base)


def _refix_crc(data: bytes) -> bytes:
    """Recompute the CRC so a mutated header reaches the field checks."""
    head = data[: fmt.HEADER_SIZE - 4]
    return head + struct.pack("<I", zlib.crc32(data[fmt.HEADER_SIZE :], zlib.crc32(head)) & 0xFFFFFFFF) + data[fmt.HEADER_SIZE :]


@pytest.mark.parametrize("dtype", ["float32", "float16", "uint8"])
@pytest.mark.parametrize("compression", ["none", "zlib", "lzma"])
def test_pack_unpack(dtype, compression):
    h = _header(dtype=dtype, compression=compression, scale=0.5, offset=-3.0)
    codes = np.arange(h.n_tiles * 5).reshape(-1, 5) % 200
    data = fmt.pack(h, codes.astype(dtype))
    got, values = fmt.unpack(data)
    assert got == h
    expected = codes * 0.5 - 3.0 if dtype == "uint8" else codes
    np.testing.assert_allclose(values, expected)


def test_header_layout_matches_docs():
    """Byte offsets as docs/format.md gives them."""
    h = _header(width=0x01020304, height=7, dtype="uint8", compression="zlib", scale=2.0, offset=1.5)
    h = fmt.Header(**{**h.__dict__, "width": 300})
    data = fmt.pack(h, np.zeros((h.n_tiles, 5), np.uint8))
    assert data[0:4] == b"\x89CAE"
    assert data[4] == 1  # version
    assert data[5] == 2 and data[6] == 1 and data[7] == 3  # dtype uint8, zlib, 3 channels
    assert struct.unpack_from("<IIHHI", data, 8) == (300, 7, 16, 16, 5)
    assert struct.unpack_from("<ff", data, 24) == (2.0, 1.5)
    assert data[32:40] == b"12345678"
    assert data[40:64] == b"m" + b"\0" * 23
    assert struct.unpack_from("<Q", data, 64)[0] == len(data) - 76
    assert struct.unpack_from("<I", data, 72)[0] == zlib.crc32(data[76:], zlib.crc32(data[:72]))


def _valid() -> bytes:
    h = _header(dtype="float16")
    return fmt.pack(h, np.ones((h.n_tiles, 5), np.float16))


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: b"", "empty file"),
        (lambda d: b"GIF89a" + d[6:], "not a .cae file"),
        (lambda d: d[:40], "truncated"),
        (lambda d: d[:-3], "truncated"),
        (lambda d: d + b"xx", "trailing bytes"),
        (lambda d: d[:4] + bytes([9]) + d[5:], "version 9 is newer"),
        (lambda d: d[:80] + bytes([d[80] ^ 0x10]) + d[81:], "checksum mismatch"),
        (lambda d: _refix_crc(d[:8] + struct.pack("<II", 1 << 20, 1 << 20) + d[16:]), "out of range"),
        (lambda d: _refix_crc(d[:8] + struct.pack("<I", 0) + d[12:]), "out of range"),
        (lambda d: _refix_crc(d[:5] + bytes([7]) + d[6:]), "unknown code dtype"),
        (lambda d: _refix_crc(d[:6] + bytes([9]) + d[7:]), "unknown payload compression"),
        (lambda d: _refix_crc(d[:7] + bytes([2]) + d[8:]), "channel count"),
        (lambda d: _refix_crc(d[:20] + struct.pack("<I", 6) + d[24:]), "bytes of codes"),
    ],
)
def test_bad_files_are_refused(mutate, message):
    with pytest.raises(CaeError, match=message):
        fmt.unpack(mutate(_valid()), "f.cae")


def test_decompression_bomb_is_refused_without_inflating():
    h = _header(dtype="uint8", compression="zlib")
    bomb = zlib.compress(b"\0" * (64 << 20), 9)  # 64 MiB of zeros in ~64 KiB
    head = fmt.HEADER.pack(fmt.MAGIC, 1, 2, 1, 3, h.width, h.height, 16, 16, 5, 1.0, 0.0, h.fingerprint, b"m", len(bomb), 0)
    data = _refix_crc(head + bomb)
    with pytest.raises(CaeError, match="more than the"):
        fmt.unpack(data, "bomb.cae")
    lz = lzma.compress(b"\0" * (64 << 20), format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2}])
    head = fmt.HEADER.pack(fmt.MAGIC, 1, 2, 2, 3, h.width, h.height, 16, 16, 5, 1.0, 0.0, h.fingerprint, b"m", len(lz), 0)
    with pytest.raises(CaeError, match="more than the"):
        fmt.unpack(_refix_crc(head + lz), "bomb.cae")


def test_nan_codes_are_refused():
    h = _header(dtype="float32")
    codes = np.ones((h.n_tiles, 5), np.float32)
    codes[0, 0] = np.nan
    with pytest.raises(CaeError, match="NaN"):
        fmt.unpack(fmt.pack(h, codes))


def _decode_or_error(model, data):
    """The decoded image of fuzzed bytes, or None after a clean one-line CaeError naming the file."""
    try:
        return codec.decode(model, bytes(data), "fuzz.cae")
    except CaeError as exc:
        assert exc.message.startswith("fuzz.cae: ") and "\n" not in exc.message
        return None


def test_fuzz_mutated_files_end_cleanly(rgb_model):
    """Thousands of mutations: every one is a clean CaeError or a valid image."""
    rng = random.Random(1234)
    image = np.random.default_rng(0).integers(0, 255, (20, 35, 3), dtype=np.uint8)
    seeds = [codec.encode(rgb_model, image, dtype=d, compression=c) for d in ("float16", "uint8", "float32") for c in ("none", "zlib", "lzma")]
    outcomes = {"error": 0, "image": 0}
    for i in range(3000):
        data = bytearray(rng.choice(seeds))
        kind = i % 5
        if kind == 0:  # truncate
            data = data[: rng.randrange(len(data))]
        elif kind == 1:  # flip bits anywhere
            for _ in range(rng.randint(1, 4)):
                j = rng.randrange(len(data))
                data[j] ^= 1 << rng.randrange(8)
        elif kind == 2:  # random header field bytes, checksum fixed
            for _ in range(rng.randint(1, 3)):
                data[rng.randrange(4, fmt.HEADER_SIZE - 4)] = rng.randrange(256)
            data = bytearray(_refix_crc(bytes(data)))
        elif kind == 3:  # payload bytes, checksum fixed
            for _ in range(rng.randint(1, 8)):
                if len(data) > fmt.HEADER_SIZE:
                    data[rng.randrange(fmt.HEADER_SIZE, len(data))] = rng.randrange(256)
            data = bytearray(_refix_crc(bytes(data)))
        else:  # append or insert junk
            j = rng.randrange(len(data))
            data[j:j] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        out = _decode_or_error(rgb_model, data)
        if out is not None:
            assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] in (1, 3)
        outcomes["error" if out is None else "image"] += 1
    assert outcomes["error"] > 1000 and outcomes["image"] > 50, outcomes


def test_fuzz_mutated_rate_files_end_cleanly(rate_model_path):
    """Version 2 files too: mutations end in a clean CaeError or a valid image, never a crash."""
    from cae_compress import zoo

    model = zoo.load(model_path=rate_model_path)
    rng = random.Random(99)
    image = np.random.default_rng(1).integers(0, 255, (20, 35, 3), dtype=np.uint8)
    seed = codec.encode(model, image)
    outcomes = {"error": 0, "image": 0}
    for i in range(400):
        data = bytearray(seed)
        kind = i % 4
        if kind == 0:
            data = data[: rng.randrange(len(data))]
        elif kind == 1:
            for _ in range(rng.randint(1, 4)):
                j = rng.randrange(len(data))
                data[j] ^= 1 << rng.randrange(8)
        elif kind == 2:  # the coded payload itself, checksum fixed: the range decoder meets garbage
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(fmt.HEADER_SIZE, len(data))] = rng.randrange(256)
            data = bytearray(_refix_crc(bytes(data)))
        else:  # tile and code-length fields, checksum fixed
            data[rng.randrange(16, 24)] = rng.randrange(256)
            data = bytearray(_refix_crc(bytes(data)))
        out = _decode_or_error(model, data)
        assert out is None or (out.dtype == np.uint8 and out.shape == image.shape)
        outcomes["error" if out is None else "image"] += 1
    assert outcomes["error"] > 150 and outcomes["image"] > 20, outcomes
