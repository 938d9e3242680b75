"""Outputs that cannot destroy inputs, and one line for every failure to write (issue #36).

A default output name never replaces a file, even with --force; an output
that is an input under another name (a hard or symbolic link) is refused;
-o through a symbolic link replaces the file it points to, through a
device, a FIFO or /dev/stdout writes through; a file system that refuses
(read-only, full) is one line and exit 2, with nothing half-written.  Tests
run as root, where chmod does not stop writes: read-only and full file
systems are simulated by patching the calls that write.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cae_compress.cli import app
from cae_compress.io import files
from cae_compress.io.images import read_image

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--model", "cifar10-64"]  # a small shipped model, where the model does not matter


def cae(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def cae_process(*args, cwd, stdout=subprocess.PIPE):
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "cae_compress", *map(str, args)], cwd=cwd, stdout=stdout, stderr=subprocess.PIPE, env=env, timeout=120)


def one_line(result, *fragments, code=2):
    """The command failed with exactly one ``cae: error:`` line holding ``fragments``, no traceback, nothing on stdout."""
    assert result.exit_code == code, (result.exit_code, result.stderr, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cae: error: "), result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(3)
    path = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 255, (16, 24, 3), dtype=np.uint8)).save(path)
    return path


def no_parts(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if ".part" in p.name]


# ------------------------------------------------------------ default names and --force
def test_decode_f_after_encode_leaves_the_source_byte_identical(photo, tmp_path):
    """The issue's report: cae encode photo.png -q 0 && cae decode photo.cae -f replaced photo.png with its lossy decode."""
    before = digest(photo)
    assert cae("encode", photo, "-q", "0").exit_code == 0
    r = cae("decode", tmp_path / "photo.cae", "-f")
    one_line(r, "photo.png: already exists", "a default output name never replaces a file", f"-o {photo} --force")
    assert digest(photo) == before
    r = cae("encode", photo, "-f")  # the same for encode: photo.cae is there
    one_line(r, "photo.cae: already exists")
    named = cae("decode", tmp_path / "photo.cae", "-o", photo, "-f")  # named with -o: the user asked for it
    assert named.exit_code == 0, named.stderr
    assert digest(photo) != before and read_image(photo).shape == (16, 24, 3)
    assert no_parts(tmp_path)


def test_an_output_that_is_an_input_under_another_name_is_refused(photo, tmp_path):
    os.link(photo, tmp_path / "hard.cae")
    os.symlink(photo, tmp_path / "soft.cae")
    before = digest(photo)
    for name in ("hard.cae", "soft.cae"):
        r = cae("encode", photo, "-o", tmp_path / name, "-f", *SMALL)
        one_line(r, "would overwrite the input itself")
    assert digest(photo) == before
    # two inputs: the first one's output is the second input (a hard link): refused before anything is written
    assert cae("encode", photo, "-o", tmp_path / "a.cae", *SMALL).exit_code == 0
    assert cae("encode", photo, "-o", tmp_path / "b.cae", *SMALL).exit_code == 0
    (tmp_path / "out").mkdir()
    os.link(tmp_path / "b.cae", tmp_path / "out" / "a.png")
    b = digest(tmp_path / "b.cae")
    r = cae("decode", tmp_path / "a.cae", tmp_path / "b.cae", "-o", tmp_path / "out", "-f")
    one_line(r, "b.cae: the output would overwrite the input itself", "out/a.png")
    assert digest(tmp_path / "b.cae") == b and not (tmp_path / "out" / "b.png").exists()


# ------------------------------------------------------------------ links, devices, FIFOs
def test_o_through_a_symbolic_link_replaces_the_file_it_points_to(photo, tmp_path):
    (tmp_path / "store").mkdir()
    target = tmp_path / "store" / "kept.cae"
    target.write_bytes(b"old")
    link = tmp_path / "link.cae"
    os.symlink(target, link)
    one_line(cae("encode", photo, "-o", link, *SMALL), "link.cae: already exists", "--force")
    r = cae("encode", photo, "-o", link, "-f", *SMALL)
    assert r.exit_code == 0, r.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)  # the link stays a link
    assert target.read_bytes()[:4] == b"\x89CAE"
    assert cae("decode", link, "-o", tmp_path / "back.png").exit_code == 0
    assert read_image(tmp_path / "back.png").shape == (16, 24, 3)
    assert no_parts(tmp_path)


@pytest.fixture
def never_replace(monkeypatch):
    """Any attempt to write a temporary file and rename it fails the test: devices must be written through, never replaced."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a device or FIFO was about to be replaced: mkstemp{args, kwargs}")

    monkeypatch.setattr(files.tempfile, "mkstemp", refuse)


def test_o_to_a_character_device_writes_through(photo, tmp_path, never_replace):
    for force in ([], ["-f"]):  # as root, -o /dev/full -f once replaced the device node with a regular file
        one_line(cae("encode", photo, "-o", "/dev/full", *force, *SMALL), "/dev/full: cannot write (No space left on device)")
    r = cae("encode", photo, "-o", "/dev/null", *SMALL)
    assert r.exit_code == 0, r.stderr
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode) and stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_o_to_a_fifo_writes_through(photo, tmp_path, never_replace):
    fifo = tmp_path / "pipe.cae"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    r = cae("encode", photo, "-o", fifo, *SMALL)
    reader.join(30)
    assert r.exit_code == 0, r.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    reference = cae_process("encode", photo, "-o", tmp_path / "file.cae", *SMALL, cwd=tmp_path)  # another process: mkstemp is not patched there
    assert reference.returncode == 0
    assert got == [(tmp_path / "file.cae").read_bytes()]


def test_every_file_this_package_writes_refuses_to_rename_over_a_fifo_or_a_folder(tmp_path):
    """atomic_write (bench --plot, compare's page, export's files ...): a device, FIFO or folder at the path is refused, never renamed over."""
    os.mkfifo(tmp_path / "plot.png")
    (tmp_path / "dir.json").mkdir()
    for name in ("plot.png", "dir.json"):
        with pytest.raises(files.CaeError, match=f"{name}: exists and is not a regular file; refusing to replace it"):
            files.atomic_write(tmp_path / name, b"data")
    assert stat.S_ISFIFO(os.stat(tmp_path / "plot.png").st_mode) and (tmp_path / "dir.json").is_dir() and no_parts(tmp_path)
    (tmp_path / "real.json").write_bytes(b"old")
    os.symlink("real.json", tmp_path / "link.json")
    assert files.atomic_write(tmp_path / "link.json", b"new") == tmp_path / "link.json"
    assert (tmp_path / "link.json").is_symlink() and (tmp_path / "real.json").read_bytes() == b"new"


def test_o_dev_stdout_writes_what_a_file_gets(photo, tmp_path):
    assert cae("encode", photo, "-o", tmp_path / "ref.cae", *SMALL).exit_code == 0
    with open(tmp_path / "via-stdout.cae", "wb") as out:
        r = cae_process("encode", photo, "-o", "/dev/stdout", *SMALL, cwd=tmp_path, stdout=out)
    assert r.returncode == 0 and r.stderr == b""
    assert (tmp_path / "via-stdout.cae").read_bytes() == (tmp_path / "ref.cae").read_bytes()
    with open(tmp_path / "via-stdout.png", "wb") as out:  # decode: PNG, though /dev/stdout has no suffix
        r = cae_process("decode", tmp_path / "ref.cae", "-o", "/dev/stdout", cwd=tmp_path, stdout=out)
    assert r.returncode == 0 and r.stderr == b""
    assert cae("decode", tmp_path / "ref.cae", "-o", tmp_path / "ref.png").exit_code == 0
    np.testing.assert_array_equal(read_image(tmp_path / "via-stdout.png"), read_image(tmp_path / "ref.png"))


@pytest.mark.parametrize("height, width", [(1, 1), (2, 3), (5, 7), (8, 8)])
def test_tiny_images_encode_decode_and_compare(tmp_path, height, width):
    """Images of 1x1 to 8x8 pixels through the default model and cae compare (JPEG XL refuses its quality 100 on them: the search goes below)."""
    pixels = np.random.default_rng(height * width).integers(0, 255, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "t.png")
    assert cae("encode", tmp_path / "t.png").exit_code == 0
    r = cae("decode", tmp_path / "t.cae", "-o", tmp_path / "back.png")
    assert r.exit_code == 0 and read_image(tmp_path / "back.png").shape == (height, width, 3), r.stderr
    r = cae("compare", tmp_path / "t.png", "-o", tmp_path / "cmp", "--codecs", "jxl,jpeg")
    assert r.exit_code == 0 and "Traceback" not in r.stderr and "JPEG XL (effort 7) q" in r.stderr, r.stderr
    assert (tmp_path / "cmp" / "index.html").stat().st_size > 0


# ---------------------------------------------------------------------------- habits
def test_several_inputs_need_o_to_be_a_folder(photo, tmp_path):
    Image.open(photo).save(tmp_path / "second.png")
    r = cae("encode", photo, tmp_path / "second.png", "-o", tmp_path / "single.cae", *SMALL)
    one_line(r, "single.cae: with several inputs, -o must be a folder", "a name ending in '/'")
    assert not (tmp_path / "single.cae").exists()
    r = cae("encode", photo, tmp_path / "second.png", "-o", f"{tmp_path / 'new'}/", *SMALL)
    assert r.exit_code == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["photo.cae", "second.cae"]
    r = cae("encode", photo, "-o", f"{tmp_path / 'alone'}/", *SMALL)  # one input: a name ending in '/' is a folder too
    assert r.exit_code == 0 and (tmp_path / "alone" / "photo.cae").is_file(), r.stderr


@pytest.mark.parametrize("command, first, second", [("encode", "photo.png", "out.cae"), ("decode", "photo.cae", "out.png")])
def test_in_out_positionals_are_refused_with_a_hint(photo, tmp_path, command, first, second, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if command == "decode":
        assert cae("encode", "photo.png", *SMALL).exit_code == 0
    before = sorted(p.name for p in tmp_path.iterdir())
    one_line(cae(command, first, second, *SMALL), f"{second}: no such input; did you mean -o {second}?")
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, not even the first input's default output


def test_quiet_and_verbose(photo, tmp_path, monkeypatch):
    monkeypatch.delenv("CAE_THREADS", raising=False)  # --threads sets it for the process: restored after the test
    rgba = tmp_path / "alpha.png"
    Image.open(photo).convert("RGBA").save(rgba)
    r = cae("encode", rgba, "-o", tmp_path / "alpha.cae", "--quiet", *SMALL)
    assert r.exit_code == 0 and r.stderr == "" and r.stdout == ""  # not even the alpha warning
    r = cae("encode", photo, "-v", "--threads", "1", *SMALL)
    assert r.exit_code == 0 and r.stdout == ""
    size = (tmp_path / "photo.cae").stat().st_size
    model, done = r.stderr.strip().splitlines()
    assert model == "cae: model cifar10-64 (litert, threads: 1)" and os.environ["CAE_THREADS"] == "1"
    assert done.startswith(f"cae: {photo} -> {tmp_path / 'photo.cae'}: 24x16, {size} bytes, {8 * size / (24 * 16):.3f} bpp, ")
    r = cae("decode", tmp_path / "photo.cae", "-o", tmp_path / "back.png", "--verbose")
    assert r.exit_code == 0 and f"{tmp_path / 'photo.cae'} -> {tmp_path / 'back.png'}: 24x16, {size} bytes" in r.stderr
    one_line(cae("decode", tmp_path / "photo.cae", "--quiet", "-v"), "--quiet and --verbose contradict each other")
    one_line(cae("decode", tmp_path / "photo.cae", "--threads", "0"), "--threads must be at least 1, got 0")
    one_line(cae("decode", tmp_path / "photo.cae", "--jobs", "0"), "--jobs must be at least 1, got 0")


def test_decode_jobs_gives_the_files_one_process_gives(photo, tmp_path, monkeypatch):
    monkeypatch.delenv("CAE_THREADS", raising=False)  # --threads sets it for the process: restored after the test
    (tmp_path / "in").mkdir()
    for i in range(3):
        Image.fromarray(np.asarray(Image.open(photo))[:, i:]).save(tmp_path / "in" / f"{i}.png")
    assert cae("encode", "-r", tmp_path / "in", "-o", tmp_path / "enc", *SMALL).exit_code == 0
    (tmp_path / "enc" / "bad.cae").write_bytes(b"not a cae file")
    one = cae("decode", "-r", tmp_path / "enc", "-o", tmp_path / "one", "--threads", "1")
    two = cae("decode", "-r", tmp_path / "enc", "-o", tmp_path / "two", "--jobs", "2", "--threads", "1")
    assert one.exit_code == two.exit_code == 2  # the bad file, one line each
    assert two.stderr.count("cae: error:") == 1 and "bad.cae: not a .cae file" in two.stderr and "3 of 4 files" in two.stderr
    for i in range(3):
        assert (tmp_path / "two" / f"{i}.png").read_bytes() == (tmp_path / "one" / f"{i}.png").read_bytes()


# ------------------------------------------------------------- file systems that refuse
def _readonly(monkeypatch):
    """A read-only folder, as root cannot make one with chmod: creating files and folders fails with EROFS."""

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(files.tempfile, "mkstemp", refuse)
    monkeypatch.setattr(Path, "mkdir", refuse)


class _FullFile:
    """A file on a full file system: every write fails with ENOSPC."""

    def __init__(self, fd):
        self.fd = fd

    def write(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


@pytest.mark.parametrize("command", ["encode", "encode -r", "decode", "compare", "demo", "bench"])
def test_a_read_only_folder_is_one_line(photo, tmp_path, monkeypatch, command):
    assert cae("encode", photo, "-o", tmp_path / "photo.cae", *SMALL).exit_code == 0
    (tmp_path / "in").mkdir()
    Image.open(photo).save(tmp_path / "in" / "a.png")
    args = {
        "encode": ["encode", photo, "-o", tmp_path / "ro" / "x.cae", *SMALL],
        "encode -r": ["encode", "-r", tmp_path / "in", "-o", tmp_path / "ro" / "enc", *SMALL],
        "decode": ["decode", tmp_path / "photo.cae", "-o", tmp_path / "x.png"],
        "compare": ["compare", photo, "-o", tmp_path / "ro" / "cmp", "--codecs", "jpeg", *SMALL],
        "demo": ["demo", "-o", tmp_path / "ro" / "demo"],
        "bench": ["bench", "--dataset", tmp_path / "in", "--models", "cifar10-64", "--baselines", "jpeg", "--results-dir", tmp_path / "ro" / "res"],
    }[command]
    before = sorted(tmp_path.rglob("*"))
    _readonly(monkeypatch)
    one_line(cae(*args), "Read-only file system")
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize("command", ["encode", "decode"])
def test_a_full_file_system_is_one_line_and_leaves_nothing(photo, tmp_path, monkeypatch, command):
    assert cae("encode", photo, "-o", tmp_path / "photo.cae", *SMALL).exit_code == 0
    out = tmp_path / ("x.cae" if command == "encode" else "x.png")
    out.write_bytes(b"the user's file")
    monkeypatch.setattr(files.os, "fdopen", lambda fd, mode: _FullFile(fd))
    args = [photo, *SMALL] if command == "encode" else [tmp_path / "photo.cae"]
    one_line(cae(command, *args, "-o", out, "-f"), f"{out}: cannot write (No space left on device)")
    assert out.read_bytes() == b"the user's file" and no_parts(tmp_path)


def test_stdout_on_a_full_disk_is_one_line(tmp_path):
    golden = ROOT / "tests" / "golden" / "0.3.0-hyperprior.cae"
    with open("/dev/full", "wb") as full:
        r = cae_process("info", golden, cwd=tmp_path, stdout=full)
    assert r.returncode == 2 and r.stderr.decode() == "cae: error: stdout: cannot write (No space left on device)\n"
    with open("/dev/full", "wb") as full:  # data on a full stdout: one line too, not a second one at exit
        r = cae_process("decode", golden, "-o", "-", cwd=tmp_path, stdout=full)
    assert r.returncode == 2 and r.stderr.decode().splitlines() == [f"cae: error: {golden}: stdout: cannot write (No space left on device)"]


# ------------------------------------------------------------------------ progress
def test_progress_counts_the_windows_the_default_model_runs(monkeypatch):
    """model.progress_steps is what the codec tells progress() in all, encoding and decoding (smaller windows: a small image has several)."""
    from cae_compress import codec, zoo
    from cae_compress.codecs import hyperprior

    monkeypatch.setattr(hyperprior, "WINDOW_AREA", 40)
    model = zoo.load("channel-context")
    pixels = np.random.default_rng(0).integers(0, 255, (100, 150, 3), dtype=np.uint8)
    steps = model.progress_steps(100, 150)
    assert steps > 2
    counted = []
    data = codec.encode(model, pixels, progress=counted.append)
    assert sum(counted) == steps
    counted.clear()
    codec.decode(model, data, progress=counted.append)
    assert sum(counted) == steps
    dense = zoo.load("cifar10-64")  # and a tiled model: its tiles
    counted.clear()
    codec.decode(dense, codec.encode(dense, pixels), progress=counted.append)
    assert sum(counted) == dense.progress_steps(100, 150) == 4 * 5


def test_a_slow_image_shows_a_bar_on_a_terminal_only(tmp_path, monkeypatch, capsys):
    """A bar of the image's tiles or windows (of model.progress_steps), once the image has taken BAR_DELAY; never off a terminal, never with quiet."""
    from cae_compress import api, zoo

    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    steps = zoo.load("cifar10-64").progress_steps(64, 96)
    assert steps == 6  # 32x32 tiles
    assert api.encode_files([str(tmp_path / "a.png")], model="cifar10-64") == 0  # stderr is no terminal here
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(api, "BAR_DELAY", 0)  # as if the image took seconds
    assert api.decode_files([str(tmp_path / "a.cae")], str(tmp_path / "quiet.png"), progress=True, quiet=True) == 0
    assert capsys.readouterr().err == ""
    assert api.decode_files([str(tmp_path / "a.cae")], str(tmp_path / "on.png"), progress=True) == 0
    err = capsys.readouterr().err
    assert f"a.cae:   0%|          | 0/{steps} [" in err and "tile/s" in err  # its total is the tiles (counted in the test above)
    np.testing.assert_array_equal(read_image(tmp_path / "on.png"), read_image(tmp_path / "quiet.png"))
