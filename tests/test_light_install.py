"""The light install: no TensorFlow, no Matplotlib.

A subprocess runs the package from the wheel users install (``light_python``:
the unpacked wheel first on PYTHONPATH, not the work tree) and blocks both
imports (as if ``pip install cae-compress`` without extras had run): the main
job (encode, decode, bench, models, demo) works on LiteRT, and each command
that needs an extra says which, in one line, exit 2.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import smooth_images

CLI = "import sys\nfrom cae_compress.cli import main\nsys.argv = ['cae', *sys.argv[1:]]\nmain()\n"


@pytest.fixture
def light_cae(light_python):
    return lambda *args, cwd: light_python(CLI, *args, cwd=cwd)


def test_the_main_job_runs_without_tensorflow(tmp_path, light_cae):
    img = smooth_images(1, 64, seed=3)[0]
    Image.fromarray(img).save(tmp_path / "a.png")
    r = light_cae("encode", "a.png", cwd=tmp_path)  # the default shipped model
    assert r.returncode == 0, r.stderr
    r = light_cae("info", "--json", "a.cae", cwd=tmp_path)
    info = __import__("json").loads(r.stdout)[0]
    assert (info["model"], info["quality"], info["fast_synthesis"]) == ("channel-context", 31, True)  # the default model at its default quality
    for args in ((), ("--fast",)):
        r = light_cae("decode", *args, "a.cae", "-o", "b.png", "--force", cwd=tmp_path)
        assert r.returncode == 0 and r.stderr == "", r.stderr
        out = np.asarray(Image.open(tmp_path / "b.png"), np.float64)
        mse = np.mean((out - img) ** 2)
        assert 10 * np.log10(255**2 / mse) > 30
    r = light_cae("models", cwd=tmp_path)
    assert r.returncode == 0 and "hyperprior" in r.stdout
    (tmp_path / "set").mkdir()
    Image.fromarray(img).save(tmp_path / "set" / "a.png")
    r = light_cae("bench", "-d", "set", "--models", "hyperprior", "--baselines", "webp", "--csv", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "cae-hyperprior" in r.stdout and "webp" in r.stdout


def test_commands_that_need_an_extra_say_which(tmp_path, lite_model_path, light_cae):
    Image.fromarray(smooth_images(1, 32, seed=5)[0]).save(tmp_path / "a.png")
    cases = {
        ("train", "-e", "1"): "cae train needs TensorFlow",
        ("inspect", "a.png", "-o", "figs"): "cae inspect needs TensorFlow",
        ("export", "--model-path", lite_model_path): "cae export needs TensorFlow",
        ("encode", "a.png", "--backend", "tensorflow"): "--backend tensorflow needs TensorFlow",
        ("bench", "-d", ".", "--plot", "p.png"): "cae bench --plot needs Matplotlib",
    }
    for args, message in cases.items():
        r = light_cae(*args, cwd=tmp_path)
        assert r.returncode == 2, (args, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0] and "pip install 'cae-compress[" in lines[0], (args, r.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]  # nothing half-written


def test_tensorflow_is_an_extra_and_the_test_command_installs_it():
    meta = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    light = " ".join(meta["dependencies"])
    assert "tensorflow" not in light and "keras" not in light and "matplotlib" not in light
    extras = meta["optional-dependencies"]
    assert any(d.startswith("tensorflow") for d in extras["train"])
    assert "cae-compress[train,plot]" in extras["test"]
