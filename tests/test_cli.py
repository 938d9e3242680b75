"""The command line, in-process (CliRunner) and through real processes and pipes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cae_compress import codec
from cae_compress.cli import app
from cae_compress.io.images import read_image
from conftest import smooth_images

runner = CliRunner()


def cae(*args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input)


def assert_clean_error(result, *fragments, code=2):
    assert result.exit_code == code, (result.exit_code, result.stderr, result.stdout)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cae: error: "), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    for f in fragments:
        assert f in lines[0], lines[0]


# -------------------------------------------------------------------------- help
def test_help_and_version():
    r = cae("--help")
    assert r.exit_code == 0
    for command in ["train", "encode", "decode", "models", "demo"]:
        assert command in r.stdout
    r = cae("--version")
    assert r.exit_code == 0 and r.stdout.startswith("cae_compress ")


@pytest.mark.parametrize("command", ["train", "encode", "decode", "demo"])
def test_every_command_help_shows_defaults(command):
    r = cae(command, "--help")
    assert r.exit_code == 0 and "[default:" in r.stdout


def test_python_dash_m():
    r = subprocess.run([sys.executable, "-m", "cae_compress", "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("cae_compress ") and r.stderr == ""


# ------------------------------------------------------------------------- train
def test_train_command(tiny_npz, tmp_path):
    run = tmp_path / "run"
    r = cae("train", "--dataset", tiny_npz, "--code-length", 8, "--filters", 4, "--epochs", 1, "--batch-size", 64, "--run-dir", run, "--quiet", "--seed", 3)
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    assert "PSNR" in r.stderr and str(run) in r.stderr
    meta = json.loads((run / "run.json").read_text())
    assert meta["config"]["seed"] == 3 and meta["command"].startswith("cae ")
    assert (run / "test_results.json").is_file()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--model", "resnet"], "unknown model 'resnet'"),
        (["--code-length", "0"], "--code-length must be positive"),
        (["--code-length", "-5"], "--code-length must be positive"),
        (["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
        (["--optimizer", "lbfgs"], "unknown optimizer"),
        (["--device", "tpu"], "unknown device"),
    ],
)
def test_train_bad_flags(tmp_path, args, fragment):
    r = cae("train", *args, "--run-dir", tmp_path / "run", "--epochs", 1)
    assert_clean_error(r, fragment)
    assert not (tmp_path / "run").exists()


def test_train_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    r = cae("train", "--dataset", tmp_path / "empty", "--run-dir", tmp_path / "run")
    assert_clean_error(r, "no images found")
    assert not (tmp_path / "run").exists()


def test_train_images_smaller_than_model_input(tmp_path):
    (tmp_path / "imgs").mkdir()
    Image.new("RGB", (10, 10)).save(tmp_path / "imgs" / "a.png")
    r = cae("train", "--dataset", tmp_path / "imgs", "--run-dir", tmp_path / "run")
    assert_clean_error(r, "smaller than the 32x32 model input")


# ---------------------------------------------------------------- encode/decode
def _photo_folder(folder: Path) -> dict[str, tuple]:
    """Images of mixed sizes, formats and modes; returns name -> expected decoded shape."""
    folder.mkdir()
    imgs = smooth_images(8, size=48, seed=4)
    expected = {}
    Image.fromarray(imgs[0]).save(folder / "a.png"); expected["a"] = (48, 48, 3)
    Image.fromarray(imgs[1][:30, :45]).save(folder / "b.jpg", quality=90); expected["b"] = (30, 45, 3)
    Image.fromarray(imgs[2][:17]).save(folder / "c.webp"); expected["c"] = (17, 48, 3)
    Image.fromarray(imgs[3]).convert("L").save(folder / "d.bmp"); expected["d"] = (48, 48, 1)
    Image.fromarray(imgs[4][:, :5]).convert("RGBA").save(folder / "e.tiff"); expected["e"] = (48, 5, 4)
    Image.fromarray(imgs[5]).convert("P").save(folder / "f.gif"); expected["f"] = (48, 48, 3)
    Image.fromarray((imgs[6][..., 0].astype(np.uint16) * 257)).save(folder / "g.png"); expected["g"] = (48, 48, 1)
    # EXIF orientation 6 (rotate 90° clockwise to display): stored 20x40, shown 40x20
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(imgs[7][:20, :40]).save(folder / "h.jpg", exif=exif); expected["h"] = (40, 20, 3)
    Image.new("RGB", (1, 1), (200, 10, 10)).save(folder / "i.png"); expected["i"] = (1, 1, 3)
    return expected


def test_folder_of_mixed_photos(rgb_model_path, tmp_path):
    expected = _photo_folder(tmp_path / "photos")
    inputs = sorted((tmp_path / "photos").iterdir())
    r = cae("encode", *inputs, "-o", f"{tmp_path / 'codes'}/", "--model-path", rgb_model_path)
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    assert "g.png: 16-bit samples reduced to 8 bits" in r.stderr  # and the RGBA tiff keeps its alpha
    codes = sorted((tmp_path / "codes").glob("*.cae"))
    assert [c.stem for c in codes] == sorted(expected)
    r = cae("decode", *codes, "-o", f"{tmp_path / 'out'}/", "--model-path", rgb_model_path)
    assert r.exit_code == 0, r.stderr
    for name, shape in expected.items():
        assert read_image(tmp_path / "out" / f"{name}.png").shape == shape, name
    assert not list(tmp_path.rglob("*.part"))


def test_default_names_and_force(rgb_model_path, tmp_path):
    img = tmp_path / "x.png"
    Image.fromarray(smooth_images(1, 20)[0]).save(img)
    assert cae("encode", img, "--model-path", rgb_model_path).exit_code == 0
    assert (tmp_path / "x.cae").is_file()
    r = cae("encode", img, "--model-path", rgb_model_path)
    assert_clean_error(r, "x.cae", "already exists", "--force")
    before = (tmp_path / "x.cae").read_bytes()
    r = cae("encode", img, "--model-path", rgb_model_path, "--force", "--dtype", "float16")  # a default name never replaces a file
    assert_clean_error(r, "x.cae: already exists", "-o")
    assert (tmp_path / "x.cae").read_bytes() == before
    assert cae("encode", img, "-o", tmp_path / "x.cae", "--model-path", rgb_model_path, "--force", "--dtype", "float16").exit_code == 0
    assert (tmp_path / "x.cae").read_bytes() != before
    img.unlink()
    assert cae("decode", tmp_path / "x.cae", "--model-path", rgb_model_path).exit_code == 0
    assert read_image(img).shape == (20, 20, 3)


def test_decode_matches_in_process_reconstruction(rgb_model, rgb_model_path, tmp_path):
    pixels = smooth_images(1, 37, seed=8)[0]
    Image.fromarray(pixels).save(tmp_path / "p.png")
    cae("encode", tmp_path / "p.png", "--model-path", rgb_model_path, "--dtype", "float32")
    cae("decode", tmp_path / "p.cae", "-o", tmp_path / "q.png", "--model-path", rgb_model_path)
    np.testing.assert_array_equal(read_image(tmp_path / "q.png"), codec.reconstruct(rgb_model, pixels, dtype="float32"))


def _bad_cae_files(tmp_path: Path, good: bytes) -> dict[str, bytes]:
    return {
        "empty.cae": b"",
        "truncated.cae": good[: len(good) // 2],
        "flipped.cae": good[:-5] + bytes([good[-5] ^ 4]) + good[-4:],
        "magic.cae": b"PK\x03\x04" + good[4:],
        "newer.cae": good[:4] + b"\x05" + good[5:],
    }


@pytest.mark.parametrize("case, fragment", [
    ("empty.cae", "empty file"),
    ("truncated.cae", "truncated"),
    ("flipped.cae", "checksum mismatch"),
    ("magic.cae", "not a .cae file"),
    ("newer.cae", "newer than this cae reads"),
])
def test_decode_bad_files(rgb_model, rgb_model_path, tmp_path, case, fragment):
    good = codec.encode(rgb_model, smooth_images(1, 20)[0])
    path = tmp_path / case
    path.write_bytes(_bad_cae_files(tmp_path, good)[case])
    r = cae("decode", path, "--model-path", rgb_model_path)
    assert_clean_error(r, str(path), fragment)
    assert list(tmp_path.iterdir()) == [path]  # no output, no temporary file


def test_encode_bad_inputs(rgb_model_path, tmp_path):
    (tmp_path / "text.png").write_text("hello")
    (tmp_path / "empty.png").write_bytes(b"")
    for name, fragment in [("text.png", "not an image"), ("empty.png", "empty input"), ("missing.png", "cannot read")]:
        r = cae("encode", tmp_path / name, "--model-path", rgb_model_path)
        assert_clean_error(r, name, fragment)
    assert not list(tmp_path.glob("*.cae")) and not list(tmp_path.glob(".*part"))


def test_one_bad_input_among_good_ones(rgb_model_path, tmp_path):
    Image.fromarray(smooth_images(1, 20)[0]).save(tmp_path / "good.png")
    (tmp_path / "bad.png").write_text("nope")
    r = cae("encode", tmp_path / "bad.png", tmp_path / "good.png", "-o", f"{tmp_path / 'out'}/", "--model-path", rgb_model_path)
    assert r.exit_code == 2 and "bad.png" in r.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["good.cae"]


def test_decode_needs_a_model_it_can_find(rgb_model, rgb_model_path, tmp_path):
    path = tmp_path / "a.cae"
    path.write_bytes(codec.encode(rgb_model, smooth_images(1, 20)[0]))
    r = cae("decode", path)
    assert_clean_error(r, f"encoded by model '{rgb_model.name}'", "--model-path")
    r = cae("encode", tmp_path / "a.cae", "--model", "no-such-model", "-o", tmp_path / "b.cae")
    assert_clean_error(r, "unknown model 'no-such-model'")


def test_encode_bad_dtype(rgb_model_path, tmp_path):
    assert_clean_error(cae("encode", "x.png", "--dtype", "int4", "--model-path", rgb_model_path), "unknown code dtype")


def test_stdout_takes_one_input(rgb_model_path, tmp_path):
    assert_clean_error(cae("encode", "a.png", "b.png", "-o", "-", "--model-path", rgb_model_path), "single input")


def test_shell_pipeline_through_real_processes(tmp_path):
    """cat | cae encode - -o - | cae decode - -o - with the default model: the original image comes back."""
    pixels = smooth_images(1, 45, seed=11)[0][:, :33]
    Image.fromarray(pixels).save(tmp_path / "a.png")
    cmd = f"cat a.png | {sys.executable} -m cae_compress encode - -o - | {sys.executable} -m cae_compress decode - -o - > b.png"
    r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    out = read_image(tmp_path / "b.png").astype(float)
    assert out.shape == pixels.shape and 10 * np.log10(255**2 / np.mean((out - pixels) ** 2)) > 30


def test_bad_input_in_a_real_process(rgb_model_path, tmp_path):
    (tmp_path / "junk.cae").write_bytes(b"\x89CAE\x01" + os.urandom(100))
    r = subprocess.run([sys.executable, "-m", "cae_compress", "decode", "junk.cae", "--model-path", str(rgb_model_path)], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("cae: error: junk.cae: ") and r.stderr.count("\n") == 1


# -------------------------------------------------------------------------- demo
def test_demo_reports_real_numbers(tmp_path):
    from cae_compress.demo import run_demo
    from cae_compress.evaluation.metrics import reconstruction_metrics

    result = run_demo(tmp_path / "demo", quiet=True, epochs=2)
    assert result.cae_bytes == (tmp_path / "demo" / "sample.cae").stat().st_size
    assert result.raw_bytes == result.width * result.height * 3
    original, decoded = read_image(result.image), read_image(result.decoded)
    assert result.psnr == pytest.approx(reconstruction_metrics(original, decoded)["psnr"])
    assert "ratio:" in result.report() and "PSNR:" in result.report()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels, with no image data: a decompression bomb's shape."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side, pillow_limit, fragment", [(20000, 89478485, "decompression bomb"), (40000, 89478485, "decompression bomb"), (20000, None, "too large")])
def test_image_bombs_are_refused_before_decoding(rgb_model_path, tmp_path, monkeypatch, side, pillow_limit, fragment):
    """Pillow's limit (its global, which we never change) refuses first; with it lifted by the user, ours (256 Mi pixels) still does."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", pillow_limit)
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(side, side))
    r = cae("encode", path, "--model-path", rgb_model_path)
    assert_clean_error(r, "bomb.png", fragment)
    assert list(tmp_path.iterdir()) == [path]


def test_two_writers_of_one_output_cannot_both_succeed(tmp_path, monkeypatch):
    """Without --force the output is created exclusively: the second writer gets the clean error."""
    from cae_compress.io import files
    from cae_compress.errors import CaeError

    target = str(tmp_path / "out.cae")
    files.write_output(target, b"first")
    # the second writer passed its early check before the first one finished
    monkeypatch.setattr(files, "check_replaceable", lambda *a, **k: None)
    with pytest.raises(CaeError, match="already exists"):
        files.write_output(target, b"second")
    monkeypatch.undo()
    assert (tmp_path / "out.cae").read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["out.cae"]  # no temporary file left
