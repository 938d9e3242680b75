"""Shared fixtures: small synthetic data and small models, built inside the tests (no downloads)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def lite_only(name: str) -> bool:
    """Whether the shipped model ``name`` ships without its ``.keras`` file (LiteRT only)."""
    from cae_compress import zoo

    return not zoo.shipped_models()[name].is_file()


def smooth_images(n: int, size: int = 16, channels: int = 3, seed: int = 0) -> np.ndarray:
    """Images an autoencoder can learn quickly: random colour gradients plus a little noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    base = rng.uniform(0, 1, (n, 1, 1, channels))
    gx = rng.uniform(-0.5, 0.5, (n, 1, 1, channels))
    gy = rng.uniform(-0.5, 0.5, (n, 1, 1, channels))
    img = base + gx * xx[None, ..., None] + gy * yy[None, ..., None] + rng.normal(0, 0.02, (n, size, size, channels))
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def tiny_npz(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, x_train=smooth_images(640, seed=1), x_test=smooth_images(64, seed=2))
    return path


def _saved_model(tmp_path_factory, name, **kwargs) -> Path:
    from cae_compress.models import build_model, save_model

    import keras

    keras.utils.set_random_seed(7)
    model = build_model(**kwargs)
    path = tmp_path_factory.mktemp(name) / "model.keras"
    save_model(model, path)
    return path


@pytest.fixture(scope="session")
def rgb_model_path(tmp_path_factory) -> Path:
    """An untrained dense model for 16x16 RGB tiles (the codec does not care about quality)."""
    return _saved_model(tmp_path_factory, "rgb", arch="dense", input_shape=(16, 16, 3), code_length=24, filters=4)


@pytest.fixture(scope="session")
def gray_model_path(tmp_path_factory) -> Path:
    return _saved_model(tmp_path_factory, "gray", arch="dense", input_shape=(8, 8, 1), code_length=8, filters=4)


@pytest.fixture(scope="session")
def rgb_model(rgb_model_path):
    from cae_compress.zoo import load

    return load(model_path=rgb_model_path)


@pytest.fixture(scope="session")
def gray_model(gray_model_path):
    from cae_compress.zoo import load

    return load(model_path=gray_model_path)


@pytest.fixture
def no_shared_data(monkeypatch):
    monkeypatch.delenv("CAE_DATA_DIR", raising=False)


@pytest.fixture(autouse=True)
def _cache_home(tmp_path, monkeypatch):
    """Keep tests away from the user's cache (the demo model lives there)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="session")
def lite_model_path(tmp_path_factory) -> Path:
    """A dense model with its LiteRT files beside it (the light inference path)."""
    from cae_compress.models.export import export_lite
    from cae_compress.models import load_model

    path = _saved_model(tmp_path_factory, "lite", arch="dense", input_shape=(16, 16, 3), code_length=24, filters=4)
    export_lite(load_model(path), path)
    return path


@pytest.fixture(scope="session")
def rate_model_path(tmp_path_factory) -> Path:
    """An untrained small rate model (factorized) with its LiteRT files and entropy tables."""
    import keras

    from cae_compress.models.export import export_lite
    from cae_compress.models import save_model
    from cae_compress.models.factorized import build_rate_model

    keras.utils.set_random_seed(11)
    model = build_rate_model(3, filters=8, channels=6)
    path = tmp_path_factory.mktemp("rate") / "model.keras"
    save_model(model, path)
    export_lite(model, path)
    return path


def source_files() -> list[str]:
    """The files a fresh clone has (tracked and new, nothing ignored), relative to the repository root."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the wheel is built from the files git tracks")
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return sorted(f for f in set(out.decode().split("\0")) if f and (ROOT / f).is_file())


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """The wheel users install, built (non-editable) from a copy of the source as a fresh clone has it.

    A copy, so that a stale ``build/`` in the work tree cannot fill in what the
    package configuration leaves out.
    """
    files = source_files()
    src = tmp_path_factory.mktemp("src")
    for f in files:
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, src / f)
    dist = tmp_path_factory.mktemp("dist")
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(src)],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr
    (path,) = dist.glob("cae_compress-*.whl")
    return path


@pytest.fixture(scope="session")
def wheel_site(wheel, tmp_path_factory) -> Path:
    """The wheel unpacked as site-packages would hold it: put first on PYTHONPATH, it is what ``import cae_compress`` finds."""
    site = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    return site


# The light install: the extras' modules cannot be imported.
BLOCK_EXTRAS = "import sys\nfor m in ('tensorflow', 'keras', 'matplotlib', 'tensorboard'): sys.modules[m] = None\n"


# Only the wheel supplies cae_compress: the editable install's finder (pip
# install -e, the test command) would fill in any module the wheel lacks.
ONLY_THE_WHEEL = "import sys\nsys.meta_path[:] = [f for f in sys.meta_path if not f.__module__.startswith('__editable__')]\n"


@pytest.fixture
def light_python(wheel_site):
    """Run Python code (after :data:`BLOCK_EXTRAS`) on the wheel's package alone, as a light install would."""
    env = {**os.environ, "PYTHONPATH": str(wheel_site)}

    def run(code: str, *args, cwd) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", ONLY_THE_WHEEL + BLOCK_EXTRAS + code, *map(str, args)],
            cwd=cwd, env=env, capture_output=True, text=True, timeout=180,
        )

    return run
