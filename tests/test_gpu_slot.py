"""``tools/gpu_slot.py``, the command for a lent GPU, runs end to end on the CPU: every mode, the self-tune, weights within the limits.

A lent GPU comes rarely and for minutes: it must never be the first to run
a code path.  These tests run the slot's own code on the CPU (PyTorch's CPU
build, which ``.ci/run`` installs): two steps of each mode (float32,
bfloat16 autocast, and ``torch.compile``, here with the ``aot_eager``
backend: the same graph capture and autograd without inductor's two-minute
C++ build), the choice, the packed weights and their limits; the crops;
the cheaper decoder's synthesis cost and its first steps.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch", reason="the slot's code needs PyTorch (.ci/run installs the CPU build)")

TOOLS = Path(__file__).resolve().parents[1] / "tools"
sys.path.insert(0, str(TOOLS))


def _photos(folder: Path, count: int = 2, shape=(150, 190)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]] / shape[1]
    for i in range(count):
        img = np.stack([128 + 100 * np.sin((3 + i) * xx + 2 * yy), 128 + 90 * np.cos(4 * yy), 90 + 60 * (xx > 0.5)], -1) + rng.normal(0, 6, (*shape, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"p{i}.png")
    return folder


@pytest.fixture(scope="module")
def start(tmp_path_factory):
    """The shipped hyperprior's weights as the mirror reads them (the slot warm-starts the contexts from it), and two photos."""
    from cae_compress import zoo
    from cae_compress.models import load_model
    from cae_compress.models.hyperprior import export_torch_npz

    folder = tmp_path_factory.mktemp("slot")
    export_torch_npz(load_model(zoo.model_file("hyperprior")[0]), folder / "start")
    return folder / "start", _photos(folder / "photos")


def _slot(tmp_path, start, photos, *extra):
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, str(TOOLS / "gpu_slot.py"), "--from", str(start), "--photos", str(photos), "--out", str(out),
                        "--device", "cpu", "--batch", "2", "--crop", "64", "--tune-steps", "2", "--tune-seconds", "0",
                        "--compile-backend", "aot_eager", "--seed", "3", *extra], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return out, r.stdout


def test_the_slot_tunes_every_mode_trains_the_fastest_and_writes_weights_that_come_back(tmp_path, start):
    import gpu_slot

    out, stdout = _slot(tmp_path, *start, "--arch", "channel-context", "--name", "cc", "--max-steps", "7", "--save-every", "0")
    tune = [json.loads(line.split("tune ", 1)[1]) for line in stdout.splitlines() if "] tune {" in line]
    assert [t["mode"] for t in tune] == ["fp32", "bf16", "bf16-compile"]
    assert all(t["ok"] and t["steps_per_s"] > 0 for t in tune), tune  # every mode ran two timed steps, its loss within 1 % of float32's
    assert 0 < abs(tune[1]["loss_vs_fp32"]) < 0.01  # bfloat16 differs from float32, but little
    best = max(tune, key=lambda t: t["mpx_per_s"])
    assert f"train with {best['mode']}" in stdout  # the fastest good mode trains

    path = out / "cc.npz"
    assert path.stat().st_size <= gpu_slot.TRANSFER_LIMIT and not list(out.glob("*.part.npz"))
    arrays, meta = gpu_slot.read_weights(str(path))
    assert meta["steps"] == 7 and meta["final"] and meta["mode"] == best["mode"] and meta["arch"] == "channel-context"
    assert len(meta["lambdas"]) == 9 and arrays["analysis/gain"].shape == (9, 192)  # three anchors above the hyperprior's six
    assert arrays["analysis/conv_1/kernel"].dtype == np.float16 and arrays["analysis/gain"].dtype == np.float32
    assert (out / "cc.log").read_text().count("] tune {") == 3

    # the weights that came back start the next slot (runs accumulate): the steps add up
    out2, stdout2 = _slot(tmp_path / "again", path, start[1], "--arch", "channel-context", "--name", "cc", "--max-steps", "4",
                          "--modes", "fp32", "--save-every", "1000")
    _, meta2 = gpu_slot.read_weights(str(out2 / "cc.npz"))
    assert meta2["total_steps"] == 7 + 4


def test_crops_are_windows_of_the_photos_flipped_or_transposed(tmp_path):
    import gpu_slot
    from gpu_train_hyperprior import load_photos

    photos = _photos(tmp_path / "p", count=1, shape=(70, 90))  # too small for a downscaled copy of a 64-pixel crop
    image = load_photos(str(photos), "cpu")[0].permute(1, 2, 0).numpy()
    crops = gpu_slot.Crops(load_photos(str(photos), "cpu"), 64, torch.device("cpu"), seed=0)
    assert crops.count == (1, 0)
    batch = crops(24).permute(0, 2, 3, 1).numpy()
    variants = set()
    for crop in batch:
        found = None
        for k in range(8):  # the eight flips and transposes of a square
            v = np.rot90(crop, k % 4)
            v = v[:, ::-1] if k >= 4 else v
            for y in range(70 - 64 + 1):
                for x in range(90 - 64 + 1):
                    if np.array_equal(image[y : y + 64, x : x + 64], v):
                        found = (k, y, x)
        assert found is not None  # every crop is a window of the photo, up to a flip or transpose
        variants.add(found)
    assert len(variants) > 12  # and they differ: places and orientations are drawn


def test_the_cheaper_decoder_costs_a_tenth_of_the_default_synthesis_and_learns(tmp_path, start):
    import gpu_slot

    arrays, _ = gpu_slot.read_weights(str(start[0]))
    shallow, _, fresh = gpu_slot.build("shallow", arrays, torch.device("cpu"))
    default, _, none = gpu_slot.build("channel-context", arrays, torch.device("cpu"))
    macs, default_macs = gpu_slot.synthesis_macs_per_pixel(shallow), gpu_slot.synthesis_macs_per_pixel(default)
    print(f"synthesis MAC per pixel: shallow {macs:.0f}, default {default_macs:.0f}")
    assert macs <= 10_000 and default_macs > 30_000
    assert fresh and not none  # from a start without its synthesis, the two-layer synthesis starts fresh

    out, stdout = _slot(tmp_path, *start, "--arch", "shallow", "--modes", "fp32", "--max-steps", "60", "--fresh-steps", "30",
                        "--warmup-steps", "5", "--lr", "3e-4", "--batch", "4", "--save-every", "1000")
    arrays2, meta = gpu_slot.read_weights(str(out / "shallow.npz"))
    assert meta["synthesis_macs_per_px"] == round(macs)
    assert "synthesis/base/kernel" in arrays2 and arrays2["synthesis/base/kernel"].shape == (13, 13, 12, 192)
    with np.load(start[0] / "analysis.npz") as a:  # the analysis is the start's (it trains after the fresh-only steps, a little)
        assert np.abs(arrays2["analysis/conv_0/kernel"].astype(np.float32) - a["conv_0/kernel"].astype(np.float32)).max() < 0.05

    # the fresh synthesis learns: the loss of the same crops falls from the start to the end
    def loss(arrays_):
        model, lambdas, _ = gpu_slot.build("shallow", arrays_, torch.device("cpu"))
        trainer = gpu_slot.Trainer(model, "fp32", lambdas, [], 1.0, torch.device("cpu"))
        crops = gpu_slot.Crops(gpu_slot.load_photos(str(start[1])), 64, torch.device("cpu"), seed=11)
        torch.manual_seed(0)
        with torch.no_grad():
            return float(trainer.loss(trainer.prepare(crops(8)), torch.full((8,), 3))[0].mean())

    before, after = loss(arrays), loss(arrays2)
    print(f"shallow loss at anchor 3: {before:.2f} -> {after:.2f}")
    assert after < 0.7 * before
