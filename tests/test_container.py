"""Version 4 of .cae: the chunked container, metadata (ICC, EXIF, XMP) and alpha end to end, the warnings of reductions, and a fuzz test."""

from __future__ import annotations

import importlib.util
import io
import random
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms
from typer.testing import CliRunner

import cae_compress
from cae_compress import codec, zoo
from cae_compress.cli import app
from cae_compress.errors import CaeError, CaeWarning
from cae_compress.io import container
from cae_compress.io import format as fmt

ROOT = Path(__file__).resolve().parents[1]
MODEL = "cifar10-64"  # small, shipped, LiteRT: the model does not matter here
runner = CliRunner()

_spec = importlib.util.spec_from_file_location("fuzz_format", ROOT / "benchmarks" / "fuzz_format.py")
fuzz_format = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz_format)


def cae(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def model():
    return zoo.load(MODEL)


def _pixels(h, w, c, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/></x:xmpmeta>'


def _exif(orientation=6) -> Image.Exif:
    e = Image.Exif()
    e[0x0112] = orientation
    e[0x010F] = "CaeCam"
    e[0x0110] = "Model 1"
    return e


def _tiff(exif) -> bytes:
    return container.exif_tiff(exif.tobytes())


# ------------------------------------------------------------------ the container
def test_version_4_bytes_as_docs_say(model):
    img = _pixels(9, 11, 3)
    plain = codec.encode(model, img)
    extras = container.Extras(icc_profile=b"ICC!", exif=b"MM\0*\0\0\0\x08\0\0", xmp=b"<x/>")
    data = codec.encode(model, img, extras=extras)
    assert plain[4] == 1 and data[4] == 4  # version 4 only where the file carries something
    assert data[5:64] == plain[5:64]  # the same header fields (the layout's)
    assert struct.unpack_from("<Q", data, 64)[0] == len(data) - 76
    assert struct.unpack_from("<I", data, 72)[0] == zlib.crc32(data[:72])  # the header alone
    pos, chunks = 76, []
    while pos < len(data):
        n, kind = struct.unpack_from("<I4s", data, pos)
        body = data[pos + 8 : pos + 8 + n]
        assert struct.unpack_from("<I", data, pos + 8 + n)[0] == zlib.crc32(kind + body)
        chunks.append((kind, body))
        pos += 12 + n
    assert chunks == [(b"IMAG", b"\x01" + plain[76:]), (b"iccp", b"ICC!"), (b"exif", b"MM\0*\0\0\0\x08\0\0"), (b"xmpd", b"<x/>")]
    assert len(codec.encode(model, img, extras=container.Extras(icc_profile=b""))) - len(plain) == 13 + 12  # IMAG framing + an empty chunk


def test_plain_files_are_versions_1_to_3_and_cost_nothing_more(model):
    img = _pixels(20, 30, 3)
    data = codec.encode(model, img)
    assert data[4] == 1 and fmt.unpack_all(data)[3] == container.Extras()
    header, record, streams = fmt.unpack_file(data)
    v4 = fmt.pack_file(header, record, streams, container.Extras(icc_profile=b"x"))
    _, record4, streams4, extras = fmt.unpack_all(v4)
    assert (record4, streams4, extras.icc_profile) == (record, streams, b"x")
    assert len(v4) - len(data) == 13 + 12 + 1  # the image chunk's 13 bytes of framing, the iccp chunk


def _chunked(model, extra_chunks: list[tuple[bytes, bytes]]) -> bytes:
    """A valid version 4 file with more chunks appended (CRCs and header repaired)."""
    data = codec.encode(model, _pixels(8, 8, 3), extras=container.Extras(xmp=b"<x/>"))
    head, chunks = fuzz_format.split(data)
    return fuzz_format.join(head, chunks + [list(c) for c in extra_chunks])


def test_unknown_ancillary_chunk_is_skipped_and_unknown_critical_refused(model, tmp_path):
    ok = _chunked(model, [(b"zeta", b"future stuff")])
    assert codec.decode(model, ok, "ok.cae").shape == (8, 8, 3)
    (tmp_path / "ok.cae").write_bytes(ok)
    r = cae("info", tmp_path / "ok.cae")
    assert r.exit_code == 0 and "xmp (4 bytes); skipped (unknown): zeta" in r.stdout, r.stdout
    bad = _chunked(model, [(b"Zeta", b"must understand")])
    with pytest.raises(CaeError, match=r"^bad.cae: critical chunk 'Zeta' is unknown to this cae; upgrade cae_compress$"):
        codec.decode(model, bad, "bad.cae")
    (tmp_path / "bad.cae").write_bytes(bad)
    r = cae("decode", tmp_path / "bad.cae", "-o", tmp_path / "bad.png", "--model", MODEL)
    assert r.exit_code == 2 and r.stderr.strip() == f"cae: error: {tmp_path / 'bad.cae'}: critical chunk 'Zeta' is unknown to this cae; upgrade cae_compress"
    assert not (tmp_path / "bad.png").exists()


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda h, c: (h, c[1:] + c[:1]), "the first chunk is 'xmpd', not the image"),
        (lambda h, c: (h, c + [c[1]]), "two 'xmpd' chunks"),
        (lambda h, c: (h, [[b"IMAG", b"\x07" + c[0][1][1:]]] + c[1:]), "unknown image layout 7"),
        (lambda h, c: (h, c + [[b"alph", b"\x05"]]), "unknown alpha coding 5"),
        (lambda h, c: (h, c + [[b"alph", container.encode_alpha(np.zeros((3, 3), np.uint8) + np.arange(3, dtype=np.uint8))]]), "alpha plane is 3x3 L, the image 8x8"),
        (lambda h, c: (h, c + [[b"alph", b"\0not a png"]]), "corrupt alpha plane (not a PNG)"),
        (lambda h, c: (h, c + [[b"pads", b""]] * 64), "more than 64 chunks"),
        (lambda h, c: (h, c + [[b"x1z2", b""]]), "corrupt chunk type"),
    ],
)
def test_bad_chunks_are_refused_in_one_line(model, mutate, message):
    data = codec.encode(model, _pixels(8, 8, 3), extras=container.Extras(xmp=b"<x/>"))
    head, chunks = mutate(*fuzz_format.split(data))
    with pytest.raises(CaeError) as exc:
        codec.decode(model, fuzz_format.join(head, chunks), "f.cae")
    assert exc.value.message.startswith("f.cae: ") and message in exc.value.message and "\n" not in exc.value.message


def test_lengths_and_crcs_are_checked_before_anything_is_read(model):
    data = codec.encode(model, _pixels(8, 8, 3), extras=container.Extras(xmp=b"<x/>"))
    head, chunks = fuzz_format.split(data)
    for length, message in ((0xFFFFFFFF, "runs past the end of the file"), (len(chunks[1][1]) + 1, "runs past the end")):
        with pytest.raises(CaeError, match=message):
            fmt.unpack_all(fuzz_format.join(head, chunks, lengths={1: length}), "f.cae")
    with pytest.raises(CaeError, match="checksum mismatch in chunk 'IMAG'"):
        fmt.unpack_all(fuzz_format.join(head, chunks, fix_crc=False), "f.cae")
    flipped = bytearray(data)
    flipped[10] ^= 1
    with pytest.raises(CaeError, match="checksum mismatch in the header"):
        fmt.parse_header(bytes(flipped[:76]), "f.cae", whole=False)  # a version 4 header checks itself (Pillow's open, cae info)
    with pytest.raises(CaeError, match="truncated"):
        fmt.unpack_all(data[:-1], "f.cae")


@settings(max_examples=150, deadline=5000, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(which=st.integers(0, 3), rng=st.randoms(use_true_random=False))
def test_fuzz_structure_aware_mutations_end_cleanly(model, fuzz_seeds, which, rng):
    """Chunk lengths, types, data, order and counts mutated (CRCs repaired): an image or one clean CaeError line, never another exception."""
    assert fuzz_format.run_case(model, fuzz_format.mutate(fuzz_seeds[which], rng)) in ("image", "error")


@pytest.fixture(scope="module")
def fuzz_seeds(model):
    return fuzz_format.seeds(model)


def test_fuzz_reaches_the_parser_past_its_checksums(model, fuzz_seeds):
    rng = random.Random(3)
    messages = set()
    for _ in range(300):
        try:
            codec.decode(model, fuzz_format.mutate(rng.choice(fuzz_seeds), rng), "f")
        except CaeError as exc:
            messages.add(exc.message.split(" ")[1])
    assert {"critical", "two", "the", "unknown", "more", "chunk"} <= messages, messages


# ------------------------------------------------------------------ EXIF helpers
def test_orientation_is_reset_and_every_other_byte_kept():
    for exif in (_exif(6), _exif(8)):
        tiff = _tiff(exif)
        at, value = container.exif_orientation(tiff)
        assert value == exif[0x0112]
        reset = container.reset_orientation(tiff)
        assert len(reset) == len(tiff) and reset[:at] == tiff[:at] and reset[at + 2 :] == tiff[at + 2 :]
        assert container.exif_orientation(reset)[1] == 1
    assert container.reset_orientation(b"junk") == b"junk"
    assert container.reset_xmp_orientation(XMP) == XMP.replace(b'Orientation="6"', b'Orientation="1"')


# ------------------------------------------------------------------ end to end
def _inputs(folder: Path) -> dict:
    """The issue's targets: an sRGB PNG with an ICC profile, a JPEG with EXIF (orientation 6) and XMP, an RGBA PNG, an LA PNG."""
    folder.mkdir()
    Image.fromarray(_pixels(12, 20, 3, 1)).save(folder / "icc.png", icc_profile=SRGB)
    Image.fromarray(_pixels(10, 16, 3, 2)).save(folder / "exif.jpg", exif=_exif(6), xmp=XMP, quality=95)
    rgba = _pixels(12, 14, 4, 3)
    Image.fromarray(rgba).save(folder / "rgba.png")
    la = _pixels(9, 13, 2, 4)
    Image.fromarray(la).save(folder / "la.png")  # (H, W, 2): LA
    return {"rgba": rgba, "la": la}


def _check_decoded(folder: Path, out: Path, planes: dict) -> None:
    with Image.open(out / "icc.png") as im:
        assert im.info["icc_profile"] == SRGB and im.mode == "RGB"
    with Image.open(out / "exif.png") as im:
        assert im.size == (10, 16)  # turned at encode
        assert container.exif_tiff(im.info["exif"]) == container.reset_orientation(_tiff(_exif(6)))  # byte for byte, orientation 1
        xmp = im.info["xmp"]
        assert (xmp.encode() if isinstance(xmp, str) else xmp) == XMP.replace(b'"6"', b'"1"')
        assert im.getexif()[0x0112] == 1 and im.getexif()[0x010F] == "CaeCam"
    with Image.open(out / "rgba.png") as im:
        assert im.mode == "RGBA"
        np.testing.assert_array_equal(np.asarray(im)[..., 3], planes["rgba"][..., 3])
    with Image.open(out / "la.png") as im:
        assert im.mode == "LA"
        np.testing.assert_array_equal(np.asarray(im)[..., 1], planes["la"][..., 1])


def test_cli_round_trip_keeps_icc_exif_xmp_and_alpha(tmp_path):
    planes = _inputs(tmp_path / "in")
    r = cae("encode", *sorted((tmp_path / "in").iterdir()), "-o", f"{tmp_path / 'codes'}/", "--model", MODEL)
    assert r.exit_code == 0 and r.stderr == "" and r.stdout == "", r.stderr
    r = cae("info", tmp_path / "codes" / "exif.cae", tmp_path / "codes" / "rgba.cae")
    assert "chunks:    image (layout 1), exif (" in r.stdout and "xmp (" in r.stdout and "alpha (" in r.stdout, r.stdout
    r = cae("decode", *sorted((tmp_path / "codes").iterdir()), "-o", f"{tmp_path / 'out'}/")
    assert r.exit_code == 0 and r.stderr == "", r.stderr
    _check_decoded(tmp_path / "in", tmp_path / "out", planes)
    # other formats hold what they can; what they cannot is said, one line each
    for suffix in (".jpg", ".webp", ".tif"):
        target = tmp_path / f"icc{suffix}"
        r = cae("decode", tmp_path / "codes" / "icc.cae", "-o", target)
        assert r.exit_code == 0 and r.stderr == "", r.stderr
        with Image.open(target) as im:
            assert im.info["icc_profile"] == SRGB, suffix
    r = cae("decode", tmp_path / "codes" / "rgba.cae", "-o", tmp_path / "rgba.jpg")
    assert r.exit_code == 0 and r.stderr == f"cae: warning: {tmp_path / 'rgba.jpg'}: alpha not written (JPEG holds none here)\n"
    r = cae("decode", tmp_path / "codes" / "exif.cae", "-o", tmp_path / "exif.bmp")
    assert r.exit_code == 0 and r.stderr == f"cae: warning: {tmp_path / 'exif.bmp'}: EXIF, XMP not written (BMP holds none of them here)\n"
    # --strip drops the metadata on purpose, not the alpha
    r = cae("encode", tmp_path / "in" / "exif.jpg", tmp_path / "in" / "rgba.png", "-o", f"{tmp_path / 'stripped'}/", "--model", MODEL, "--strip")
    assert r.exit_code == 0, r.stderr
    assert (tmp_path / "stripped" / "exif.cae").read_bytes()[4] == 1  # a plain file
    assert fmt.unpack_all((tmp_path / "stripped" / "rgba.cae").read_bytes())[3].alpha is not None


def test_python_round_trip_keeps_icc_exif_xmp_and_alpha(tmp_path):
    planes = _inputs(tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    for name in ("icc.png", "exif.jpg", "rgba.png", "la.png"):
        with Image.open(tmp_path / "in" / name) as im:
            data = cae_compress.compress(im, model=MODEL)
        pixels, info = cae_compress.decompress(data, with_info=True)
        assert set(info) <= {"icc_profile", "exif", "xmp"} and all(isinstance(v, bytes) for v in info.values())
        Image.fromarray(pixels).save(out / (Path(name).stem + ".png"), **{k: v for k, v in info.items() if k != "xmp"},
                                     **({"pnginfo": _xmp_text(info["xmp"])} if "xmp" in info else {}))
        with cae_compress.open(data) as im:  # the Pillow plugin reads the same into im.info
            assert {k: im.info[k] for k in info} == info and im.mode == {"rgba.png": "RGBA", "la.png": "LA"}.get(name, "RGB")
    _check_decoded(tmp_path / "in", out, planes)
    assert cae_compress.decompress(cae_compress.compress(_pixels(8, 8, 4), model=MODEL)).shape == (8, 8, 4)  # arrays with alpha too
    with Image.open(tmp_path / "in" / "icc.png") as im:  # strip=True: no metadata, on purpose
        assert cae_compress.decompress(cae_compress.compress(im, model=MODEL, strip=True), with_info=True)[1] == {}


def _xmp_text(xmp: bytes):
    from PIL import PngImagePlugin

    text = PngImagePlugin.PngInfo()
    text.add_itxt("XML:com.adobe.xmp", xmp.decode())
    return text


def test_pillow_plugin_round_trip_and_its_save_options(tmp_path):
    import cae_compress.pillow  # noqa: F401

    planes = _inputs(tmp_path / "in")
    codes, out = tmp_path / "codes", tmp_path / "out"
    codes.mkdir(), out.mkdir()
    for name in ("icc.png", "rgba.png", "la.png"):
        with Image.open(tmp_path / "in" / name) as im:
            im.save(codes / (Path(name).stem + ".cae"), model=MODEL)  # the ICC profile of im.info, the alpha
    with Image.open(tmp_path / "in" / "exif.jpg") as im:  # EXIF and XMP as save options, as Pillow's WebP and AVIF take them
        im.save(codes / "exif.cae", model=MODEL, exif=im.info["exif"], xmp=im.info["xmp"])
        original_exif = container.exif_tiff(im.info["exif"])
        im.save(codes / "exif-object.cae", model=MODEL, exif=im.getexif())  # an Image.Exif too
    for f in codes.iterdir():
        with Image.open(f) as im:
            im.save(out / (f.stem + ".png"), **{k: im.info[k] for k in ("icc_profile", "exif") if k in im.info},
                    **({"pnginfo": _xmp_text(im.info["xmp"])} if "xmp" in im.info else {}))
    with Image.open(out / "exif.png") as im:
        assert im.getexif()[0x0112] == 1 and im.getexif()[0x010F] == "CaeCam" and im.size == (10, 16)
    with Image.open(codes / "exif.cae") as im:
        assert im.info["xmp"] == XMP.replace(b'"6"', b'"1"')
        assert container.exif_tiff(im.info["exif"]) == container.reset_orientation(original_exif)  # byte for byte, orientation aside
    with Image.open(codes / "exif-object.cae") as im:
        assert im.getexif()[0x0112] == 1 and im.getexif()[0x0110] == "Model 1"
    for name in ("icc", "rgba", "la"):
        _check_one = {"icc": lambda im: im.info["icc_profile"] == SRGB,
                      "rgba": lambda im: (np.asarray(im)[..., 3] == planes["rgba"][..., 3]).all(),
                      "la": lambda im: (np.asarray(im)[..., 1] == planes["la"][..., 1]).all()}[name]
        with Image.open(out / f"{name}.png") as im:
            assert _check_one(im), name
    img = Image.fromarray(_pixels(8, 8, 3))
    for bad in ({"lossless": True}, {"optimize": True, "method": 6}):
        with pytest.raises(ValueError, match="unknown save option"):
            img.save(io.BytesIO(), format="CAE", model=MODEL, **bad)


# ------------------------------------------------------------------ no silent reduction
def _png16(arr: np.ndarray) -> bytes:
    """A 48-bit RGB PNG (Pillow opens it as 8-bit RGB without a word)."""
    h, w, _ = arr.shape
    raw = b"".join(b"\0" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _reductions(folder: Path) -> dict:
    folder.mkdir()
    (folder / "rgb16.png").write_bytes(_png16(np.random.default_rng(0).integers(0, 65535, (6, 7, 3)).astype(np.uint16)))
    Image.fromarray((np.arange(48).reshape(6, 8) * 1000).astype(np.uint16)).save(folder / "gray16.png")
    frames = [Image.fromarray(_pixels(6, 6, 3, i)) for i in range(3)]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:])
    Image.new("CMYK", (5, 5), (10, 20, 30, 40)).save(folder / "cmyk.jpg")
    Image.new("CMYK", (5, 5), (10, 20, 30, 40)).save(folder / "cmyk-icc.jpg", icc_profile=b"not a usable profile")
    Image.fromarray(np.linspace(0, 300, 30, dtype=np.float32).reshape(5, 6)).save(folder / "float.tif")
    return {
        "cmyk-icc.jpg": "cmyk-icc.jpg: CMYK converted to RGB, without its ICC profile (unusable, dropped)",
        "float.tif": "float.tif: floating-point samples reduced to 8 bits",
        "rgb16.png": "rgb16.png: 16-bit samples reduced to 8 bits", "gray16.png": "gray16.png: 16-bit samples reduced to 8 bits",
        "anim.gif": "anim.gif: 3 frames, encoding the first", "cmyk.jpg": "cmyk.jpg: CMYK converted to RGB",
    }


def test_every_reduction_is_one_warning_line_in_the_cli_and_a_python_warning(tmp_path):
    said = _reductions(tmp_path / "in")
    r = cae("encode", *sorted((tmp_path / "in").iterdir()), "-o", f"{tmp_path / 'codes'}/", "--model", MODEL)
    assert r.exit_code == 0 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert sorted(lines) == sorted(f"cae: warning: {tmp_path / 'in' / name[: name.index(':')]}{name[name.index(':'):]}" for name in said.values()), lines
    for name, message in said.items():
        with Image.open(tmp_path / "in" / name) as im, pytest.warns(CaeWarning) as caught:
            cae_compress.compress(im, model=MODEL)
        assert [str(w.message) for w in caught if w.category is CaeWarning] == [f"{tmp_path / 'in'}/{message}"], name
    with Image.open(tmp_path / "in" / "rgb16.png") as im, pytest.warns(CaeWarning, match="rgb16.png: 16-bit samples reduced to 8 bits"):
        im.save(io.BytesIO(), format="CAE", model=MODEL)  # the Pillow plugin (Pillow loads the image before the plugin sees it)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CaeWarning)  # nothing lost: not a word (RGB, palette, RGBA, LA, bilevel, 8-bit grey)
        for im in (Image.fromarray(_pixels(8, 8, 3)), Image.fromarray(_pixels(8, 8, 3)).convert("P"), Image.fromarray(_pixels(8, 8, 4)),
                   Image.fromarray(_pixels(8, 8, 2)), Image.new("1", (8, 8), 1), Image.new("L", (8, 8), 7)):
            cae_compress.compress(im, model=MODEL)
    with Image.open(tmp_path / "in" / "cmyk-icc.jpg") as im:  # a CMYK profile is not carried with RGB pixels
        with pytest.warns(CaeWarning):
            assert cae_compress.decompress(cae_compress.compress(im, model=MODEL), with_info=True)[1] == {}


def test_version_4_golden_files_carry_their_chunks_byte_for_byte():
    """tests/golden's version 4 files (tools/make_golden.py --v4; their pixels, alpha included, are checked by test_golden.py)."""
    import hashlib
    import json

    golden = ROOT / "tests" / "golden"
    index = json.loads((golden / "golden.json").read_text())
    v4 = {name: e for name, e in index.items() if e["version"] == 4}
    assert {e["model"] for e in v4.values()} >= {"channel-context", "cifar10-64"}  # layouts 3 and 1
    for name, entry in v4.items():
        header, extras = fmt.parse_extras((golden / name).read_bytes(), name)
        carried = {"icc": extras.icc_profile, "exif": extras.exif, "xmp": extras.xmp, "alpha": extras.alpha}
        assert {k: hashlib.sha256(v).hexdigest() for k, v in carried.items()} == entry["chunks_sha256"], name
        assert header.layout == zoo.load(entry["model"]).version and entry["shape"][2] == 4


def test_metadata_a_writer_refuses_is_left_out_with_a_warning(model, tmp_path):
    data = codec.encode(model, _pixels(8, 8, 3), extras=container.Extras(xmp=b"<x/>" * 20000))  # 80 KB: over a JPEG segment
    (tmp_path / "big.cae").write_bytes(data)
    r = cae("decode", tmp_path / "big.cae", "-o", tmp_path / "big.jpg", "--model", MODEL)
    assert r.exit_code == 0 and r.stderr == f"cae: warning: {tmp_path / 'big.jpg'}: metadata not written (JPEG: XMP data is too long)\n"
    assert Image.open(tmp_path / "big.jpg").size == (8, 8)
    r = cae("decode", tmp_path / "big.cae", "-o", tmp_path / "big.png", "--model", MODEL)
    assert r.exit_code == 0 and r.stderr == ""
    assert Image.open(tmp_path / "big.png").info["xmp"] == b"<x/>" * 20000


def test_a_tiffs_own_structure_tags_are_not_carried_as_exif(tmp_path):
    from cae_compress.io.images import image_bytes, read_picture, saving

    exif = Image.Exif()
    exif[0x010F] = "CaeCam"
    xmp = XMP.replace(b' tiff:Orientation="6"', b"")  # (Pillow turns a TIFF by its XMP orientation when it loads it)
    exif[700] = xmp
    Image.fromarray(_pixels(4, 5, 3)).save(tmp_path / "a.tif", exif=exif, icc_profile=SRGB)
    _, extras = read_picture(tmp_path / "a.tif")
    carried = Image.Exif()
    carried.load(extras.exif)
    assert dict(carried) == {0x010F: "CaeCam"}  # not its width, strips, compression...
    assert extras.icc_profile == SRGB and extras.xmp == xmp
    pixels, args, left = saving(_pixels(4, 5, 3), extras, "TIFF")  # and cae decode writes both EXIF and XMP into a TIFF
    (tmp_path / "b.tif").write_bytes(image_bytes(pixels, "TIFF", **args))
    _, again = read_picture(tmp_path / "b.tif")
    assert (again.icc_profile, again.exif, again.xmp, left) == (SRGB, extras.exif, xmp, [])


def test_pillow_opens_a_broken_version_4_file_and_fails_on_load(model):
    import cae_compress.pillow  # noqa: F401

    data = codec.encode(model, _pixels(8, 8, 4), extras=container.Extras(xmp=b"<x/>"))
    im = Image.open(io.BytesIO(data[:-3]))  # a .cae (its header checks out), its chunks cut short
    assert im.format == "CAE" and im.size == (8, 8)
    with pytest.raises(OSError, match=rf"^<image>: \.cae file truncated \({len(data) - 3} bytes, the header says {len(data)}\)$"):
        im.load()
