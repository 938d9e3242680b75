"""Every model shipped in cae_compress/pretrained/: its manifest matches its files, it round-trips, both backends agree."""

import hashlib

import numpy as np
import pytest

from cae_compress import codec, zoo
from cae_compress.errors import CaeError
from cae_compress.runtime.files import ModelFiles
from conftest import lite_only, smooth_images

SHIPPED = sorted(zoo.shipped_models())
pytestmark = pytest.mark.skipif(not SHIPPED, reason="no shipped models in this checkout")


@pytest.mark.parametrize("name", SHIPPED)
def test_manifest_matches_the_files(name):
    path = zoo.shipped_models()[name]
    m = zoo.manifest(name)
    assert m["name"] == name and m["command"].startswith(("cae train", "python tools/gpu_train_hyperprior.py", "python tools/gpu_train_channel_context.py"))
    if lite_only(name):  # shipped without its .keras file: the manifest says so
        assert "lite_only" in m and "sha256" not in m
    else:
        assert m["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    names = {p.name for p in ModelFiles(path).exported()} | set(m["sha256_lite"])
    for n in names:  # every file beside the weights, the hyperprior's extra graphs and parameters too
        assert m["sha256_lite"][n] == hashlib.sha256((path.parent / n).read_bytes()).hexdigest()
    assert m["test"]["psnr"] > 20


@pytest.mark.parametrize("name", SHIPPED)
def test_round_trip_and_backends_agree(name):
    lite = zoo.load(name, backend="litert")
    img = smooth_images(1, 72, seed=12)[0][:, :50]
    data = codec.encode(lite, img)
    a = codec.decode(lite, data)
    if lite_only(name):
        with pytest.raises(CaeError, match="shipped with its LiteRT files only"):
            zoo.load(name, backend="tensorflow")
    else:
        keras = zoo.load(name, backend="tensorflow")
        assert lite.fingerprint == keras.fingerprint
        b = codec.decode(keras, data)
        assert a.shape == img.shape and np.abs(a.astype(int) - b).max() <= 1
    psnr = 10 * np.log10(255**2 / np.mean((a.astype(float) - img) ** 2))
    # a smooth image comes back well from any trained model; 64 floats per 32x32 tile (cifar10-64) is the coarsest
    assert psnr > (20 if zoo.manifest(name).get("architecture") == "deep" else 25)


def test_shipped_folder_stays_small():
    """80 MB since 0.4.0 (60 before): the channel-context model (36 MB with its fast synthesis) ships beside every model whose
    files must keep decoding; the hyperprior's .keras file (15 MB) made part of the room (it ships its LiteRT files only)."""
    folder = zoo.shipped_models()[SHIPPED[0]].parent
    assert sum(p.stat().st_size for p in folder.iterdir()) <= 80e6
