"""``--effort``: encode-time refinement of the hyperprior's codes, decoded by the plain decoder."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cae_compress import codec, zoo
from cae_compress.evaluation.bench import Row, rate_summary
from cae_compress.codecs.hyperprior import EFFORT_STEPS, STRIDE, padded_shape
from cae_compress.models.refine import WINDOW, distortion_weight_at


def _sample(h=128, w=192):
    from cae_compress.demo import SAMPLE

    with Image.open(SAMPLE) as im:
        return np.asarray(im.convert("RGB"))[:h, :w]


def _mse(a, b):
    return float(np.mean((a.astype(float) - b.astype(float)) ** 2))


@pytest.fixture(scope="module")
def shipped_tf():
    """The default model (channel-context), with its Keras model: --effort refines through it."""
    if "channel-context" not in zoo.shipped_models():
        pytest.skip("no shipped channel-context model")
    return zoo.load("channel-context", backend="tensorflow")


def test_refined_file_is_smaller_for_its_quality_and_decodes_with_plain_litert(shipped_tf, tmp_path):
    img = _sample()
    q = shipped_tf.default_quality
    plain = codec.encode(shipped_tf, img, quality=q)
    steps = []
    refined = codec.encode(shipped_tf, img, quality=q, effort=4, on_step=steps.append)
    rows, cols = (n // STRIDE for n in padded_shape(*img.shape[:2]))
    assert sum(steps) == EFFORT_STEPS[4 - 1] * -(-rows // WINDOW) * -(-cols // WINDOW) > 0  # every step of every refined window counted
    assert refined != plain
    (tmp_path / "refined.cae").write_bytes(refined)
    # decode in a fresh process with the plain LiteRT decoder, TensorFlow never imported
    script = (
        "import sys; from cae_compress import api\n"
        "assert api.decode_files(['refined.cae'], 'refined.png') == 0\n"
        "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'\n"
    )
    r = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = np.asarray(Image.open(tmp_path / "refined.png"))
    plain_out = codec.decode(zoo.load("channel-context"), plain)
    pixels = img.shape[0] * img.shape[1]
    weight = distortion_weight_at(shipped_tf.cae.lambdas, q)
    cost = lambda data, pix: 8 * len(data) / pixels + weight * _mse(img, pix)  # noqa: E731  (what the refinement lowers)
    assert cost(refined, out) < cost(plain, plain_out)
    assert 10 * np.log10(255**2 / _mse(img, out)) > 10 * np.log10(255**2 / _mse(img, plain_out)) - 0.5  # the same quality, about
    assert len(refined) < 1.05 * len(plain)


def test_effort_needs_a_model_with_a_continuous_quality_and_a_level_in_range(tmp_path, rate_model_path):
    Image.fromarray(_sample(64, 64)).save(tmp_path / "a.png")
    cases = {
        ("--effort", "3", "--model-path", str(rate_model_path)): "--effort above 1 refines the codes of models with a continuous quality",
        ("--effort", "10"): "--effort must be between 1 and 9, got 10",
        ("--effort", "0"): "--effort must be between 1 and 9, got 0",
    }
    for args, message in cases.items():
        r = subprocess.run([sys.executable, "-m", "cae_compress", "encode", "a.png", *args], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert r.returncode == 2, (args, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"cae: error: {message}"), (args, r.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_bench_reports_each_effort_curve_against_effort_1():
    def row(curve, bpp, psnr):
        return Row(curve, f"{curve} {bpp}", None, 1, 0, bpp, 1, 1, psnr, 1, 1, 0, 0)

    base = [row("cae-hyperprior", b, p) for b, p in ((0.2, 29.0), (0.4, 31.5), (0.7, 33.5), (1.0, 35.0))]
    better = [row("cae-hyperprior-e9", 0.93 * b, p) for b, p in ((0.2, 29.0), (0.4, 31.5), (0.7, 33.5), (1.0, 35.0))]
    summary = rate_summary(base + better)
    assert summary["cae-hyperprior-e9_bd_rate_vs_effort1"] == pytest.approx(-7.0, abs=0.5)
    assert "cae-hyperprior_bd_rate_vs_effort1" not in summary
