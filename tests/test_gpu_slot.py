"""``tools/gpu_slot.py``, the command for a lent GPU, runs end to end on the CPU, and ``tools/import_gpu_run.py`` brings its weights home.

A lent GPU comes rarely and for minutes: it must never be the first to run
a code path.  These tests run the slot's own code on the CPU (PyTorch's CPU
build, which ``.ci/run`` installs): two steps of each mode (float32,
bfloat16 autocast, ``torch.compile`` and its CUDA-graph mode, compiled here
with the ``aot_eager`` backend: the same graph capture and autograd without
inductor's two-minute C++ build), the choice, the packed weights within the
transfer limit, and the import: Keras model, LiteRT export, real files
encoded and decoded, the ledger line; the crops; the cheaper decoder
(``shallow``): its synthesis cost, its first steps, its Keras model.
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


def _photos(folder: Path, count: int = 2, shape=(128, 192)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]] / shape[1]
    for i in range(count):
        img = np.stack([128 + 100 * np.sin((3 + i) * xx + 2 * yy), 128 + 90 * np.cos(4 * yy), 90 + 60 * (xx > 0.5)], -1) + rng.normal(0, 6, (*shape, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"p{i}.png")
    return folder


def _slot(out, start, photos, *extra):
    r = subprocess.run([sys.executable, str(TOOLS / "gpu_slot.py"), "--from", str(start), "--photos", str(photos), "--out", str(out),
                        "--device", "cpu", "--batch", "2", "--crop", "64", "--tune-steps", "2", "--tune-seconds", "0",
                        "--compile-backend", "aot_eager", "--seed", "3", *extra], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout


@pytest.fixture(scope="module")
def slot(tmp_path_factory):
    """One channel-context slot on the CPU from the shipped channel-context model: every mode tuned, then 6 steps."""
    from tests.gpu_starts import channel_context_start

    folder = tmp_path_factory.mktemp("slot")
    channel_context_start(folder / "start")
    photos = _photos(folder / "photos")
    # (the tolerance: the tune batch here is 2 crops of 64 pixels, where bfloat16's loss moves by up to 1-2 %; on the GPU's 64 crops of 256, 0.3 %)
    stdout = _slot(folder / "out", folder / "start", photos, "--arch", "channel-context", "--name", "cc", "--max-steps", "6",
                   "--modes", "fp32,bf16,bf16-compile,bf16-graphs", "--save-every", "0", "--tolerance", "0.03")
    return folder, stdout


def test_the_slot_tunes_every_mode_trains_the_fastest_and_writes_weights_that_come_back(slot):
    import gpu_slot

    folder, stdout = slot
    tune = [json.loads(line.split("tune ", 1)[1]) for line in stdout.splitlines() if "] tune {" in line]
    assert [t["mode"] for t in tune] == ["fp32", "bf16", "bf16-compile", "bf16-graphs"]
    assert all(t["ok"] and t["steps_per_s"] > 0 for t in tune), tune  # every mode ran its timed steps, its loss close to float32's
    assert abs(tune[0]["loss_vs_fp32"]) < 1e-6 and 0 < abs(tune[1]["loss_vs_fp32"]) < 0.03  # bfloat16 differs from float32, but little
    best = max(tune, key=lambda t: t["mpx_per_s"])
    assert f"train with {best['mode']}" in stdout  # the fastest good mode trains

    path = folder / "out" / "cc.npz"
    assert path.stat().st_size <= gpu_slot.TRANSFER_LIMIT and not list(path.parent.glob("*.part.npz"))
    arrays, meta = gpu_slot.read_weights(str(path))
    assert meta["steps"] == 6 and meta["final"] and meta["mode"] == best["mode"] and meta["arch"] == "channel-context"
    assert len(meta["lambdas"]) == 9 and arrays["analysis/gain"].shape == (9, 192)  # three anchors above the hyperprior's six
    assert arrays["analysis/conv_1/kernel"].dtype == np.float16 and arrays["analysis/gain"].dtype == np.float32
    assert (folder / "out" / "cc.log").read_text().count("] tune {") == 4


def test_the_import_builds_exports_codes_real_files_and_writes_the_ledger_line(slot, tmp_path):
    import import_gpu_run

    folder, _ = slot
    ledger = tmp_path / "ledger.md"
    result = import_gpu_run.main([str(folder / "out" / "cc.npz"), "--name", "cc-test", "--runs", str(tmp_path / "runs"),
                                  "--images", str(folder / "photos"), "--every", "1", "--qualities", "0,100",
                                  "--baseline", "hyperprior", "--ledger", str(ledger)])
    run = tmp_path / "runs" / "cc-test"
    assert (run / "cc-test.keras").is_file() and list(run.glob("cc-test.*.tflite"))  # the Keras model and its LiteRT export
    new = result["new"]
    assert new["bpp"][1] > new["bpp"][0] > 0 and new["psnr"][1] > new["psnr"][0] > 20  # real files: quality 100 is larger and better
    lines = ledger.read_text().splitlines()
    assert lines[0] == "# Training ledger" and lines[-1].startswith("| ") and "| channel-context | start |" in lines[-1]
    assert f"{result['bd_rate']:+.2f} %" in lines[-1] and "| 6 (6) |" in lines[-1]


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


def test_the_cheaper_decoder_costs_a_tenth_learns_and_its_keras_model_computes_as_the_mirror(slot, tmp_path):
    import gpu_slot
    import import_gpu_run
    from cae_compress import codec, zoo

    folder, _ = slot
    start = str(folder / "out" / "cc.npz")  # the channel-context slot's weights: the shallow run keeps all but the synthesis
    arrays, _ = gpu_slot.read_weights(start)
    shallow, _, fresh = gpu_slot.build("shallow", arrays, torch.device("cpu"))
    default, _, none = gpu_slot.build("channel-context", arrays, torch.device("cpu"))
    macs, default_macs = gpu_slot.synthesis_macs_per_pixel(shallow), gpu_slot.synthesis_macs_per_pixel(default)
    print(f"synthesis MAC per pixel: shallow {macs:.0f}, default {default_macs:.0f}")
    assert macs <= 10_000 and default_macs > 30_000
    assert fresh and not none  # from a start without its synthesis, the two-layer synthesis starts fresh

    out = tmp_path / "out"
    _slot(out, start, folder / "photos", "--arch", "shallow", "--modes", "fp32", "--max-steps", "40", "--fresh-steps", "20",
          "--warmup-steps", "5", "--lr", "3e-4", "--batch", "4", "--save-every", "1000")
    arrays2, meta = gpu_slot.read_weights(str(out / "shallow.npz"))
    assert meta["synthesis_macs_per_px"] == round(macs) and meta["total_steps"] == 40  # a new architecture's count starts at its own steps
    assert arrays2["synthesis/base/kernel"].shape == (13, 13, 12, 192)

    # the fresh synthesis learns: the loss of the same crops falls from the start to the end
    def loss(arrays_):
        model, lambdas, _ = gpu_slot.build("shallow", arrays_, torch.device("cpu"))
        trainer = gpu_slot.Trainer(model, "fp32", lambdas, [], 1.0, torch.device("cpu"))
        crops = gpu_slot.Crops(gpu_slot.load_photos(str(folder / "photos")), 64, torch.device("cpu"), seed=11)
        torch.manual_seed(0)
        with torch.no_grad():
            return float(trainer.loss(trainer.prepare(crops(8)), torch.full((8,), 3))[0].mean())

    before, after = loss(arrays), loss(arrays2)
    print(f"shallow loss at anchor 3: {before:.2f} -> {after:.2f}")
    assert after < 0.7 * before

    # its Keras model computes what the mirror computes, and files round-trip through LiteRT
    from cae_compress.models.shallow import from_torch_export

    weights = import_gpu_run.unpack(arrays2, tmp_path / "weights")
    keras_model = from_torch_export(weights)
    mirror, _, _ = gpu_slot.build("shallow", arrays2, torch.device("cpu"))
    mirror.eval()
    x = np.random.default_rng(1).uniform(0, 1, (1, 64, 64, 3)).astype(np.float32)
    with torch.no_grad():
        x_torch = mirror(torch.from_numpy(x).permute(0, 3, 1, 2), torch.tensor([4]))[0].permute(0, 2, 3, 1).numpy()
    x_keras = np.asarray(keras_model.forward(x, np.array([4], np.int32), training=False)[0])
    assert np.abs(x_torch - x_keras).max() < 1e-3
    path = import_gpu_run.build_and_export(weights, tmp_path / "shallow-test.keras", "shallow")
    lite = zoo.load(None, path, backend="litert")
    img = np.asarray(Image.open(folder / "photos" / "p0.png"))
    data = codec.encode(lite, img, quality=60)
    decoded = codec.decode(lite, data)  # the symbols' checksums hold
    assert decoded.shape == img.shape and decoded.dtype == np.uint8
    keras_decoded = codec.decode(zoo.load(None, path, backend="tensorflow"), data)  # the same file through the Keras networks
    assert np.abs(decoded.astype(int) - keras_decoded).max() <= 2  # the LiteRT export (sub-pixel convolutions, ResidualGDN) is the same function
    psnr = 10 * np.log10(255.0**2 / np.mean((decoded.astype(float) - img) ** 2))
    print(f"shallow after 40 CPU steps: {8 * len(data) / img[..., 0].size:.3f} bpp, {psnr:.2f} dB")
    assert psnr > 15


def test_a_fast_synthesis_is_distilled_from_a_slots_packed_weights(slot, tmp_path):
    """``tools/gpu_train_synthesis.py --teacher NAME.npz``: the next slot distils a ``--fast`` synthesis for the weights the last one made."""
    import gpu_slot

    from cae_compress.models.hyperprior import synthesis_widths

    folder, _ = slot
    packed = folder / "out" / "cc.npz"
    out = tmp_path / "fast"
    r = subprocess.run([sys.executable, str(TOOLS / "gpu_train_synthesis.py"), "--photos", str(folder / "photos"), "--teacher", str(packed),
                        "--widths", "64,32,16", "--out", str(out), "--ckpt", str(tmp_path / "ckpt.pt"), "--device", "cpu", "--batch", "2",
                        "--crop", "64", "--max-steps", "2"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "done: step 2" in r.stdout and synthesis_widths(out) == (64, 32, 16)
    arrays, _ = gpu_slot.read_weights(str(packed))
    with np.load(out / "analysis.npz") as a:  # the teacher's analysis, untouched, as the packed file has it
        assert np.array_equal(a["conv_1/kernel"], arrays["analysis/conv_1/kernel"].astype(np.float32))
