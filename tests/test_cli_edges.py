"""The CLI's edges as a new user meets them: folders, the input as its own output, suffixes, -r.

Each case goes through the real command line (exit status, the one line on
stderr, no file written or overwritten); a property-based test throws random
combinations of paths, suffixes and flags at ``encode`` and ``decode``.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from cae_compress.cli import app
from conftest import smooth_images


def cae(*args, cwd):
    return subprocess.run([sys.executable, "-m", "cae_compress", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def folder(tmp_path, lite_model_path):
    """photos/a.png, photos/sub/b.jpg, photos/notes.txt in a folder alone in its parent, and the model to use."""
    tmp_path = tmp_path / "alone" / "cwd"
    imgs = smooth_images(2, 40, seed=4)
    (tmp_path / "photos" / "sub").mkdir(parents=True)
    Image.fromarray(imgs[0]).save(tmp_path / "photos" / "a.png")
    Image.fromarray(imgs[1]).save(tmp_path / "photos" / "sub" / "b.jpg", quality=95)
    (tmp_path / "photos" / "notes.txt").write_text("not an image")
    return tmp_path, lite_model_path


def _snapshot(root: Path) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def test_a_folder_without_r_is_one_clean_error(folder):
    tmp, model = folder
    for arg in (".", "photos", "photos/"):
        r = cae("encode", arg, "--model-path", model, cwd=tmp / "photos" if arg == "." else tmp)
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert r.stderr.strip().splitlines() == [f"cae: error: {arg}: is a directory (use -r to encode every file under it)"]
    assert sorted(p.name for p in (tmp / "photos").rglob("*")) == ["a.png", "b.jpg", "notes.txt", "sub"]


def test_recursive_encode_and_decode_mirror_the_tree(folder):
    tmp, model = folder
    r = cae("encode", "-r", "photos", "-o", "enc", "--model-path", model, cwd=tmp)
    assert r.returncode == 0, r.stderr
    assert "photos/notes.txt: skipped (not an image)" in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("cae: encode: 2 of 2 files, ")
    assert sorted(str(p.relative_to(tmp / "enc")) for p in (tmp / "enc").rglob("*.cae")) == ["a.cae", "sub/b.cae"]
    r = cae("decode", "-r", "enc", "-o", "dec", "--model-path", model, cwd=tmp)
    assert r.returncode == 0, r.stderr
    assert sorted(str(p.relative_to(tmp / "dec")) for p in (tmp / "dec").rglob("*.png")) == ["a.png", "sub/b.png"]
    assert Image.open(tmp / "dec" / "sub" / "b.png").size == (40, 40)


def test_decoding_an_image_says_not_a_cae_file_and_never_overwrites_it(folder):
    tmp, model = folder
    before = _snapshot(tmp)
    for extra in ([], ["-f"]):
        r = cae("decode", "photos/a.png", "--model-path", model, *extra, cwd=tmp)
        assert r.returncode == 2 and r.stderr.strip() == "cae: error: photos/a.png: not a .cae file (bad magic bytes)"
    r = cae("encode", "photos/a.png", "-o", "photos/a.png", "-f", "--model-path", model, cwd=tmp)
    assert r.returncode == 2 and "would overwrite the input itself" in r.stderr
    assert _snapshot(tmp) == before


def test_an_output_suffix_nobody_writes_is_refused(folder):
    tmp, model = folder
    assert cae("encode", "photos/a.png", "-o", "a.cae", "--model-path", model, cwd=tmp).returncode == 0
    r = cae("decode", "a.cae", "-o", "a.xyz", "--model-path", model, cwd=tmp)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "a.xyz: cannot write images with suffix '.xyz' (use .png" in r.stderr
    assert not (tmp / "a.xyz").exists()
    r = cae("decode", "a.cae", "-o", "a.webp", "--model-path", model, cwd=tmp)
    assert r.returncode == 0 and Image.open(tmp / "a.webp").format == "WEBP"


PATHS = st.sampled_from([".", "..", "photos", "photos/", "photos/a.png", "photos/sub/b.jpg", "photos/notes.txt", "missing.png", "a.cae", "-"])
OUTPUTS = st.sampled_from([None, "-", "out", "photos/a.png", "photos", "x.xyz", "x.png", "x.cae", "photos/sub/b.jpg", "a.cae"])
FLAGS = st.lists(st.sampled_from(["-r", "-f", "-q", "--bpp"]), unique=True, max_size=3)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(["encode", "decode"]), inputs=st.lists(PATHS, min_size=1, max_size=3), output=OUTPUTS, flags=FLAGS)
def test_random_paths_and_flags_never_crash_or_overwrite_an_input(folder, command, inputs, output, flags, monkeypatch):
    tmp, model = folder  # tmp's parent holds nothing else, so ".." with -r stays inside the test's folders
    monkeypatch.chdir(tmp)
    if not (tmp / "a.cae").exists():
        assert CliRunner().invoke(app, ["encode", "photos/a.png", "-o", "a.cae", "--model-path", str(model)]).exit_code == 0
    for made in [*(tmp / "photos").rglob("*.cae"), *(tmp / "photos").rglob("*.png")]:  # earlier examples' outputs
        if made.name != "a.png" or made.parent != tmp / "photos":
            made.unlink()
    reads = (".cae",) if command == "decode" else (".png", ".jpg", ".txt")
    inputs_before = {}
    for name in inputs:  # what this command reads: the files named, and with -r those under the folders named
        path = (tmp / name).resolve()
        if path.is_file() and path.is_relative_to(tmp):
            inputs_before[path] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif path.is_dir() and path.is_relative_to(tmp):
            inputs_before.update({p: hashlib.sha256(p.read_bytes()).hexdigest() for p in path.rglob("*") if p.is_file() and p.suffix in reads})
    args = [command, *inputs, "--model-path", str(model)]
    if output is not None:
        args += ["-o", output]
    for flag in flags:
        args += {"-q": ["-q", "50"], "--bpp": ["--bpp", "1"]}.get(flag, [flag])
    result = CliRunner().invoke(app, args, input=b"")
    assert result.exit_code in (0, 1, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    for path, digest in inputs_before.items():  # no input is ever changed or deleted
        assert path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == digest, path
    for junk in (tmp / "out", tmp / "x.png", tmp / "x.cae", tmp / "x.xyz"):
        if junk.is_dir():
            import shutil

            shutil.rmtree(junk)
        elif junk.exists():
            junk.unlink()
