"""The dense-code family (cifar10-32 ... cifar10-256): picked by code length, benched by default on CIFAR-10."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cae_compress import api, zoo
from conftest import smooth_images

FAMILY = zoo.family("cifar10")


def test_an_unshipped_code_length_is_one_clear_error(tmp_path):
    Image.fromarray(smooth_images(1, 32, seed=2)[0]).save(tmp_path / "a.png")
    r = subprocess.run([sys.executable, "-m", "cae_compress", "encode", "a.png", "--code-length", "77"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"cae: error: --code-length 77: no shipped model cifar10-77 (code lengths shipped: {', '.join(n.split('-')[1] for n in FAMILY) or 'none'})"]
    r = subprocess.run([sys.executable, "-m", "cae_compress", "encode", "a.png", "-c", "64", "-m", "hyperprior"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--model and --code-length both pick a model" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


@pytest.mark.skipif(not FAMILY, reason="no dense-code family shipped")
def test_code_length_picks_the_family_model_and_round_trips(tmp_path):
    img = smooth_images(1, 40, seed=8)[0]
    Image.fromarray(img).save(tmp_path / "a.png")
    quality = []
    for name in FAMILY:
        n = int(name.split("-")[1])
        r = subprocess.run([sys.executable, "-m", "cae_compress", "encode", "a.png", "-c", str(n), "-o", f"{n}.cae"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        data = (tmp_path / f"{n}.cae").read_bytes()
        assert data[4] == 1  # version 1: fixed-length float codes
        assert api.decode_files([str(tmp_path / f"{n}.cae")], str(tmp_path / f"{n}.png")) == 0
        out = np.asarray(Image.open(tmp_path / f"{n}.png"), float)
        quality.append(10 * np.log10(255**2 / np.mean((out - img) ** 2)))
        assert quality[-1] > 15
        assert zoo.manifest(name)["code_length"] == n and zoo.manifest(name)["training_minutes"] > 0
    assert quality == sorted(quality)  # a longer code, a better image


@pytest.mark.skipif(not FAMILY, reason="no dense-code family shipped")
def test_bench_on_cifar10_defaults_to_the_family():
    runtimes = api.select_models("cifar10", None, None, None)
    assert [m.name for m in runtimes] == FAMILY
