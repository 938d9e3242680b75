"""Bring a GPU slot's weights home: build, export, evaluate on Kodak, and write the run's line in docs/training-ledger.md.

    python tools/import_gpu_run.py /work/.device/N/cc.npz [--name cc-slot3] [--images ../shared/data/kodak] [--every 3]

For a ``channel-context`` or ``shallow`` run (``tools/gpu_slot.py``'s packed ``NAME.npz``):

1. the weights unpacked into ``gpu/runs/NAME/weights/`` (the ``.npz`` groups
   that ``channel_context.from_torch_export`` reads; ``--from`` of the next
   slot can take them, or the packed file itself);
2. the Keras model built, its weights rounded to float16 values as the
   shipped models' are, saved as ``gpu/runs/NAME/NAME.keras`` and exported
   to LiteRT (``cae export``'s files beside it);
3. every ``--every``-th photo of ``--images`` encoded and decoded through
   LiteRT with real files at ``--qualities``, and the same with the shipped
   default model: BD-rate against the default over their common PSNR range,
   the top of the range (quality 100), and the median decode time of a photo;
4. one line appended to ``--ledger``: date, machine, architecture, start,
   steps, minutes, Mpx/s, mode, BD-rate, top, decode time, commit.

A ``shallow`` run goes the same way (its own Keras model, the same codec).
An architecture the package cannot build yet is evaluated through its
PyTorch mirror instead (needs PyTorch):
the bits of the rounded codes under the entropy model (the rate a file
would have, less a few header bytes) and the PSNR of the mirror's
reconstruction, at each rate anchor, against the start's channel-context
mirror measured the same way; its ledger line says "mirror estimate".
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
LEDGER_HEAD = """# Training ledger

How every trained weight came to be: one line a GPU slot (`tools/gpu_slot.py`), appended by
`tools/import_gpu_run.py` when its weights come home. BD-rate: against the shipped default model
over the common PSNR range, every third Kodak photo, real files through LiteRT (negative: smaller
files); "mirror estimate": bits of the rounded codes and the PyTorch mirror's PSNR at the rate
anchors, against the start's mirror measured the same way. Top: quality 100 (or the top anchor).
[training.md](training.md) says how to run a slot.

| date | machine | architecture | from | steps (total) | minutes | Mpx/s | mode | BD-rate | top | decode | commit | note |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
"""


def unpack(arrays: dict, folder: Path) -> Path:
    """The packed ``GROUP/KEY`` arrays as ``folder/GROUP.npz`` files (float32, as the Keras loader reads them)."""
    folder.mkdir(parents=True, exist_ok=True)
    groups: dict[str, dict] = {}
    for key, value in arrays.items():
        g, k = key.split("/", 1)
        groups.setdefault(g, {})[k] = value.astype(np.float32) if value.dtype == np.float16 else value
    for g, values in groups.items():
        np.savez(folder / f"{g}.npz", **values)
    return folder


BUILDERS = {"channel-context": "cae_compress.models.channel_context", "shallow": "cae_compress.models.shallow"}  # their from_torch_export


def build_and_export(weights: Path, path: Path, arch: str = "channel-context"):
    """The Keras model of an ``arch`` export, rounded to float16 values, saved to ``path`` and exported to LiteRT."""
    import importlib

    from cae_compress.models import load_model, save_model
    from cae_compress.models.export import export_lite
    from cae_compress.models.hyperprior import round_weights_to_float16

    model = importlib.import_module(BUILDERS[arch]).from_torch_export(weights)
    round_weights_to_float16(model)
    save_model(model, path)
    export_lite(load_model(path), path)
    return path


def photos(folder: str, every: int) -> list[np.ndarray]:
    from cae_compress.io.images import list_images, read_image

    out = []
    for i, p in enumerate(sorted(list_images(folder))):
        if i % every == 0:
            with open(p, "rb") as f:
                out.append(read_image(f.read(), str(p))[..., :3])
    return out


def curve(model, images: list[np.ndarray], qualities: list[int]) -> dict:
    """Real files through ``model``: mean bpp and RGB PSNR at each quality, the median decode time of a photo."""
    from cae_compress import codec
    from cae_compress.evaluation.metrics import per_image_mse, psnr_from_mse

    bpp, psnr, times = [], [], []
    for q in qualities:
        b, p = [], []
        for img in images:
            data = codec.encode(model, img, quality=q)
            t0 = time.perf_counter()
            out = codec.decode(model, data)
            times.append(time.perf_counter() - t0)
            b.append(8 * len(data) / (img.shape[0] * img.shape[1]))
            p.append(float(psnr_from_mse(per_image_mse(img, out))[0]))
        bpp.append(float(np.mean(b)))
        psnr.append(float(np.mean(p)))
    return {"bpp": bpp, "psnr": psnr, "decode_s": float(np.median(times))}


def mirror_curve(arch: str, arrays: dict, images: list[np.ndarray]) -> dict:
    """The PyTorch mirror's estimate at each rate anchor: bits of the rounded codes, PSNR of its reconstruction (rounded to 8 bits)."""
    import torch

    import gpu_slot

    model, lambdas, _ = gpu_slot.build(arch, arrays, torch.device("cpu"))
    model.eval()
    model.rounded_rates = True
    bpp, psnr, times = [], [], []
    with torch.no_grad():
        for k in range(len(lambdas)):
            b, p = [], []
            for img in images:
                x = torch.from_numpy(img.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
                h, w = img.shape[:2]
                ph, pw = -h % 64, -w % 64  # the codec pads to whole tiles of the hyper-codes
                xp = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="replicate")
                level = torch.tensor([k])
                y_hat, bits_y, bits_z = model.code(xp, level)
                t0 = time.perf_counter()
                x_hat = model.synthesise(y_hat, level)[..., :h, :w]
                times.append(time.perf_counter() - t0)
                out = (x_hat.clamp(0, 1) * 255).round()[0].permute(1, 2, 0).numpy()
                mse = float(np.mean((out - img.astype(np.float64)) ** 2))
                b.append(float(bits_y + bits_z) / (h * w))
                p.append(10 * np.log10(255.0**2 / max(mse, 1e-10)))
            bpp.append(float(np.mean(b)))
            psnr.append(float(np.mean(p)))
    return {"bpp": bpp, "psnr": psnr, "decode_s": float(np.median(times))}


def ledger_line(meta: dict, bd: float | None, top: tuple[float, float], decode_s: float, note: str) -> str:
    bd_text = "n/a" if bd is None else f"{bd:+.2f} %"
    return (f"| {meta.get('date', dt.date.today().isoformat())} | {meta.get('machine', '?')} | {meta.get('arch', '?')} | {meta.get('from', '?')} "
            f"| {meta.get('steps', '?')} ({meta.get('total_steps', '?')}) | {meta.get('train_minutes', '?')} | {meta.get('mpx_per_s', '?')} "
            f"| {meta.get('mode', '?')}, batch {meta.get('batch', '?')} of {meta.get('crop', '?')} | {bd_text} | {top[0]:.3f} bpp / {top[1]:.2f} dB "
            f"| {decode_s * 1000:.0f} ms | {meta.get('commit', '?')} | {note} |\n")


def append_ledger(path: Path, line: str) -> None:
    if not path.exists() or not path.read_text().strip():
        path.write_text(LEDGER_HEAD)
    with open(path, "a") as f:
        f.write(line)


def main(argv=None) -> dict:
    import gpu_slot

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("packed", help="a slot's NAME.npz")
    p.add_argument("--name", default=None, help="the run's name (default: the file's stem)")
    p.add_argument("--runs", default=str(ROOT / "gpu" / "runs"), help="where the run's folder goes (git-ignored)")
    p.add_argument("--images", default=str(ROOT.parent / "shared" / "data" / "kodak"))
    p.add_argument("--every", type=int, default=3, help="every N-th photo of --images")
    p.add_argument("--qualities", default="0,10,20,30,40,50,60,70,80,90,100")
    p.add_argument("--baseline", default=None, help="a shipped model's name (default: the shipped default), a .keras model with its export, or weights (a slot's file, a folder of groups)")
    p.add_argument("--ledger", default=str(ROOT / "docs" / "training-ledger.md"))
    p.add_argument("--note", default="")
    p.add_argument("--mirror", action="store_true", help="the mirror estimate even where the package builds the architecture")
    args = p.parse_args(argv)
    arrays, meta = gpu_slot.read_weights(args.packed)
    name = args.name or Path(args.packed).stem
    folder = Path(args.runs) / name
    images = photos(args.images, args.every)
    if not images:
        raise SystemExit(f"{args.images}: no images")
    arch = meta.get("arch", "channel-context")
    if arch in BUILDERS and not args.mirror:
        from cae_compress import zoo

        weights = unpack(arrays, folder / "weights")
        path = build_and_export(weights, folder / f"{name}.keras", arch)
        qualities = [int(q) for q in args.qualities.split(",")]
        baseline = args.baseline or zoo.default_model_name()
        new = curve(zoo.load(None, path, backend="litert"), images, qualities)
        if baseline.endswith(".keras") and os.path.exists(baseline):  # a model built before (its LiteRT export beside it)
            base = curve(zoo.load(None, baseline, backend="litert"), images, qualities)
            baseline = Path(baseline).stem
        elif os.path.exists(baseline):  # weights (a slot's file or a folder of groups), built as the new ones
            base_arrays, _ = gpu_slot.read_weights(baseline)
            base_name = Path(baseline).stem if Path(baseline).is_file() else Path(baseline).name
            base_path = build_and_export(unpack(base_arrays, folder / "baseline" / "weights"), folder / "baseline" / f"{base_name}.keras")
            base = curve(zoo.load(None, base_path, backend="litert"), images, qualities)
            baseline = base_name
        else:
            base = curve(zoo.load(baseline, backend="litert"), images, qualities)
        note = args.note or f"against {baseline}, {len(images)} photos, qualities {qualities[0]}-{qualities[-1]}"
    else:
        start, _ = gpu_slot.read_weights(str(ROOT / "gpu" / "start-cc")) if (ROOT / "gpu" / "start-cc").exists() else (None, None)
        if start is None:
            raise SystemExit("a mirror estimate needs the start's weights in gpu/start-cc (the channel-context run it started from)")
        unpack(arrays, folder / "weights")
        new = mirror_curve(arch, arrays, images)
        base = mirror_curve("channel-context", start, images)
        note = args.note or f"mirror estimate against the start's mirror, {len(images)} photos, {len(new['bpp'])} anchors"
    from cae_compress.evaluation.metrics import bd_rate

    bd = bd_rate(base["bpp"], base["psnr"], new["bpp"], new["psnr"])
    top = (new["bpp"][-1], new["psnr"][-1])
    result = {"name": name, "meta": {k: v for k, v in meta.items() if k != "tune"}, "new": new, "baseline": base, "bd_rate": bd, "top": top}
    (folder / "evaluation.json").write_text(json.dumps(result, indent=2) + "\n")
    append_ledger(Path(args.ledger), ledger_line(meta, bd, top, new["decode_s"], note))
    print(json.dumps({"name": name, "bd_rate": bd, "top": top, "decode_ms": round(new["decode_s"] * 1000),
                      "baseline_top": (base["bpp"][-1], base["psnr"][-1])}, indent=1))
    return result


if __name__ == "__main__":
    main()
