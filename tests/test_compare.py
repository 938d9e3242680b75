"""``cae compare``: the image through cae and the classic codecs at the same bytes, as a page and as crops."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cae_compress.cli import app
from cae_compress.evaluation.compare import worst_region


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """cae compare of a 192x256 crop of the sample photo at 0.5 bpp: (folder, original, the command's result)."""
    from cae_compress.demo import SAMPLE

    folder = tmp_path_factory.mktemp("compare")
    with Image.open(SAMPLE) as im:
        original = np.asarray(im.convert("RGB"))[:192, :256]
    Image.fromarray(original).save(folder / "photo.png")
    r = CliRunner().invoke(app, ["compare", str(folder / "photo.png"), "-o", str(folder / "out"), "--bpp", "0.5", "--crop", "96"])
    return folder, original, r


def test_every_codec_at_no_more_bytes_than_cae_in_the_page_and_the_crops(compared):
    folder, original, r = compared
    assert r.exit_code == 0, r.output
    assert r.stdout.split() == [str(folder / "out" / "index.html"), str(folder / "out" / "crops.png")]
    lines = [line for line in r.stderr.splitlines() if line.startswith("cae: compare: ")]
    sizes = {line.split(": ")[2].split(" (")[0].split(" q")[0]: int(re.search(r"(\d+) bytes", line).group(1)) for line in lines}
    assert list(sizes) == ["cae channel-context", "WebP", "AVIF", "JPEG XL", "JPEG"]  # the default model
    assert 8 * sizes["cae channel-context"] / (192 * 256) <= 0.5
    assert all(n <= sizes["cae channel-context"] for n in sizes.values())
    page = (folder / "out" / "index.html").read_text()
    assert "src=\"http" not in page and page.count("data:image/png;base64,") == 16  # self-contained: 2 per slider, 6 crops
    assert page.count('type="range"') == 5
    crops = Image.open(folder / "out" / "crops.png")
    assert crops.size[0] >= 3 * 96 and crops.size[1] >= 2 * 96


def test_the_crops_are_where_the_error_is_largest():
    a = np.zeros((100, 120, 3), np.uint8)
    b = a.copy()
    b[60:70, 80:90] = 200
    top, left, h, w = worst_region(a, b, 32)
    assert (h, w) == (32, 32) and top <= 60 and top + 32 >= 70 and left <= 80 and left + 32 >= 90
    assert worst_region(a, b, 500) == (0, 0, 100, 120)


def test_bad_flags_are_one_line(compared, tmp_path):
    folder, _, _ = compared
    r = CliRunner().invoke(app, ["compare", str(folder / "photo.png"), "-o", str(tmp_path / "x"), "--codecs", "webp,bmp"])
    assert r.exit_code == 2 and r.stderr.strip() == "cae: error: unknown codec 'bmp' (choose from: webp, avif, jxl, jpeg)"
    r = CliRunner().invoke(app, ["compare", str(folder / "photo.png"), "-o", str(tmp_path / "x"), "--bpp", "1", "-q", "3"])
    assert r.exit_code == 2 and "--quality and --bpp both set the quality" in r.stderr
    assert not (tmp_path / "x").exists()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (.ci/run installs Debian's chromium package)")
def test_a_real_browser_shows_the_page_with_no_errors(compared, tmp_path):
    folder, original, _ = compared
    url = (folder / "out" / "index.html").as_uri()
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=5000"]
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    body = re.search(r"<body[^>]*>", dom.stdout).group(0)
    assert 'data-images="16/16"' in body and 'data-errors="0"' in body, body  # every image decoded, no script or load error
    assert "Uncaught" not in dom.stderr
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, "--window-size=800,900", f"--screenshot={shot}", url], capture_output=True, timeout=120, check=True)
    screen = np.asarray(Image.open(shot).convert("L")).astype(float)
    # the first slider is on screen at 1:1: its right half, the original, is found in the screenshot almost exactly
    template = np.asarray(Image.fromarray(original).convert("L")).astype(float)[:, 160:]
    top, left, diff = _best_match(screen, template)
    assert diff < 3, (top, left, diff)


def _best_match(screen: np.ndarray, template: np.ndarray) -> tuple[int, int, float]:
    """Where ``template`` fits ``screen`` best (sum of squared differences, by FFT), and the mean absolute difference there."""
    th, tw = template.shape
    shape = (screen.shape[0] + th, screen.shape[1] + tw)
    corr = np.fft.irfft2(np.fft.rfft2(screen, shape) * np.conj(np.fft.rfft2(template, shape)), shape)[: screen.shape[0] - th + 1, : screen.shape[1] - tw + 1]
    sums = np.pad(np.square(screen).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    energy = sums[th:, tw:] - sums[:-th, tw:] - sums[th:, :-tw] + sums[:-th, :-tw]
    top, left = np.unravel_index(np.argmin(energy - 2 * corr), energy.shape)
    return int(top), int(left), float(np.abs(screen[top : top + th, left : left + tw] - template).mean())


def test_a_tiny_image_and_a_target_not_met_are_said_on_the_page(tmp_path, monkeypatch):
    """A 7x5 image: no quality fits 0.3 bpp (the header alone is 17 bpp); JPEG cannot go down to cae's bytes; a codec whose encoder refuses the image is skipped."""
    from cae_compress.evaluation import baselines

    real = baselines.classic_encode

    def avif_refuses(pixels, codec, quality):  # as JPEG XL's encoder refuses a few pixels at quality 100 (RuntimeError from its plugin)
        if codec == "avif":
            raise RuntimeError("The encoder API is used in an incorrect way")
        return real(pixels, codec, quality)

    monkeypatch.setattr(baselines, "classic_encode", avif_refuses)
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (5, 7, 3), dtype=np.uint8)).save(tmp_path / "tiny.png")
    r = CliRunner().invoke(app, ["compare", str(tmp_path / "tiny.png"), "-o", str(tmp_path / "out"), "--bpp", "0.3", "--codecs", "avif,jxl,jpeg"])
    assert r.exit_code == 0 and "Traceback" not in r.stderr, r.stderr
    cae_bytes = int(re.search(r"cae: compare: cae \S+ \(bpp 0\.3 not met: quality 0\): (\d+) bytes", r.stderr).group(1))
    cae_bpp = 8 * cae_bytes / 35
    over = f"{cae_bpp:.3f} bpp, {100 * (cae_bpp / 0.3 - 1):.0f} % over the 0.3 bpp asked"
    warnings = [line for line in r.stderr.splitlines() if line.startswith("cae: warning: ")]
    assert len(warnings) == 3 and over in warnings[0] and "the target could not be met" in warnings[0]
    assert "JPEG q1: cannot go down to cae's" in warnings[1]
    assert warnings[2] == "cae: warning: AVIF (speed 6): skipped, it cannot encode this 7x5 image (The encoder API is used in an incorrect way)"
    page = (tmp_path / "out" / "index.html").read_text()
    assert page.count("<strong>Note:</strong>") == 3 and over in page
    assert f"0.3 bpp asked, {cae_bpp:.3f} bpp written (the target could not be met)" in page
    assert page.count('type="range"') == 3  # cae, JPEG XL and JPEG: AVIF skipped


def test_a_quality_an_encoder_refuses_counts_as_too_large():
    """JPEG XL's encoder refuses quality 100 (lossless) on a few pixels: the search settles below it instead of failing."""
    from cae_compress.evaluation.baselines import classic_at_bytes, classic_decode

    pixels = np.random.default_rng(1).integers(0, 255, (5, 7, 3), dtype=np.uint8)
    data, q = classic_at_bytes(pixels, "jxl", 10**6)
    assert q == 99 and classic_decode(data, 3).shape == (5, 7, 3)
