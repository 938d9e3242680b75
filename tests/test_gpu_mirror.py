"""The PyTorch mirror that trains the channel-context model on a lent GPU computes what the Keras model computes.

Runs where PyTorch is installed (the GPU machines; here ``pip install
torch``), and skips elsewhere: a few CPU steps of
``tools/gpu_train_channel_context.py`` from a trained hyperprior start,
then the Keras model loads the export and reconstructs as the PyTorch one
does; the same for a narrower synthesis distilled by
``tools/gpu_train_synthesis.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch", reason="PyTorch is on the GPU machines, not in the test extra")

TOOLS = Path(__file__).resolve().parents[1] / "tools"


@pytest.fixture(scope="module")
def start(tmp_path_factory):
    """A trained hyperprior start (tests/gpu_starts.py) as the mirror reads it, and two small photos."""
    from tests.gpu_starts import hyperprior_start

    folder = tmp_path_factory.mktemp("mirror")
    hyperprior_start(folder / "start")
    photos = folder / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:160, 0:200] / 200
    for i in range(2):
        img = np.stack([128 + 100 * np.sin((3 + i) * xx + 2 * yy), 128 + 90 * np.cos(4 * yy), 90 + 60 * (xx > 0.5)], -1) + rng.normal(0, 6, (160, 200, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(photos / f"p{i}.png")
    return folder / "start", photos


def test_a_few_cpu_steps_export_what_keras_loads_and_computes_alike(tmp_path, start):
    from cae_compress.models.channel_context import TOP_LAMBDAS, from_torch_export

    start, photos = start
    rng = np.random.default_rng(0)
    r = subprocess.run([sys.executable, str(TOOLS / "gpu_train_channel_context.py"), "--photos", str(photos), "--out", str(tmp_path / "out"),
                        "--ckpt", str(tmp_path / "ckpt.pt"), "--init-npz", str(start), "--device", "cpu", "--batch", "2",
                        "--crop", "64", "--max-steps", "3", "--lr", "1e-3", "--top-anchors", "--balance-anchors"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "contexts warm-started" in r.stdout and "done: step 3" in r.stdout

    sys.path.insert(0, str(TOOLS))
    import gpu_train_channel_context as script

    mirror = script.model_class()()
    mirror.extend_anchors(3)
    mirror.load_state_dict(torch.load(tmp_path / "ckpt.pt", map_location="cpu")["model"])
    mirror.eval()
    keras_model = from_torch_export(tmp_path / "out")
    assert keras_model.lambdas[-3:] == TOP_LAMBDAS and np.asarray(keras_model.gain).shape[0] == 9  # three anchors above the six
    x = rng.uniform(0, 1, (1, 64, 64, 3)).astype(np.float32)
    with torch.no_grad():
        x_torch = mirror(torch.from_numpy(x).permute(0, 3, 1, 2), torch.tensor([8]))[0].permute(0, 2, 3, 1).numpy()
    x_keras = np.asarray(keras_model.forward(x, np.array([8], np.int32), training=False)[0])  # the top anchor
    diff = np.abs(x_torch - x_keras).max()
    print(f"largest difference, PyTorch against Keras: {diff:.2e}")
    assert diff < 1e-3  # the same function (float rounding apart)
    contexts = [np.abs(np.asarray(c.layers[-1].kernel)).max() for c in keras_model.mean_contexts]
    assert max(contexts) > 0  # trained away from the warm start's zeros


def test_a_narrower_synthesis_distilled_on_the_cpu_loads_into_keras_and_computes_alike(tmp_path, start):
    from cae_compress.models.hyperprior import build_hyperprior_model, load_torch_export, synthesis_widths

    start, photos = start
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, str(TOOLS / "gpu_train_synthesis.py"), "--photos", str(photos), "--teacher", str(start), "--widths", "96,48,24",
                        "--out", str(out), "--ckpt", str(tmp_path / "ckpt.pt"), "--device", "cpu", "--batch", "2", "--crop", "64",
                        "--max-steps", "12", "--lr", "1e-3"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "done: step 12" in r.stdout and "vs teacher" in r.stdout
    assert synthesis_widths(out) == (96, 48, 24)
    with np.load(start / "analysis.npz") as a, np.load(out / "analysis.npz") as b:
        assert all(np.array_equal(a[k], b[k]) for k in a.files)  # the analysis is the teacher's, untouched

    sys.path.insert(0, str(TOOLS))
    import gpu_train_synthesis as script

    teacher, _ = script.teacher_model(str(start), torch.device("cpu"))
    x = np.random.default_rng(1).uniform(0, 1, (1, 64, 64, 3)).astype(np.float32)
    x_t, level = torch.from_numpy(x).permute(0, 3, 1, 2), torch.tensor([2])
    with torch.no_grad():
        y_hat = teacher.code(x_t, level)[0]
    student = script.student_model(teacher, (96, 48, 24), y_hat, level)
    student.load_state_dict(torch.load(tmp_path / "ckpt.pt", map_location="cpu")["model"])
    with torch.no_grad():
        x_torch = student(y_hat, level).permute(0, 2, 3, 1).numpy()
    model = build_hyperprior_model(synthesis=synthesis_widths(out))
    load_torch_export(model, out)
    assert [layer.filters for layer in model.decoder.layers if hasattr(layer, "filters")] == [96, 48, 24, 3]
    x_keras = np.asarray(model.forward(x, np.array([2], np.int32), training=False)[0])
    diff = np.abs(x_torch - x_keras).max()
    print(f"largest difference, PyTorch student against Keras: {diff:.2e}")
    assert diff < 1e-3
