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
