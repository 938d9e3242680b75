"""Ship finished dense-code runs as cae_compress/pretrained/cifar10-<n>.*: float16 weights, LiteRT files, manifest.

    CAE_DATA_DIR=../shared/data python tools/ship_dense.py ~/cae-runs/dense/cifar10-32 ~/cae-runs/dense/cifar10-64 ...

For each run folder (named ``<dataset>-<code length>``): publishes it with
``zoo.publish`` (the manifest: command, flags, data, validation and test
results), rounds every weight to the nearest float16 value (so the LiteRT
files store float16, half the size, and the ``.keras`` file deflates),
re-exports the LiteRT files, and records in the manifest what the rounding
did to the decoded pixels of the first ``--check`` CIFAR-10 test images
(through the real codec, uint8 codes: largest and mean change in grey
levels, PSNR before and after), the wall-clock training time, and the
sha256 of every file.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
from pathlib import Path

import numpy as np


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def decoded(runtime, images):
    from cae_compress import codec

    return np.stack([codec.decode(runtime, codec.encode(runtime, im)) for im in images])


def psnr(a, b):
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2, axis=(1, 2, 3))
    return float(np.mean(10 * np.log10(255.0**2 / np.maximum(mse, 1e-10))))


def main() -> None:
    from cae_compress import zoo

    p = argparse.ArgumentParser()
    p.add_argument("runs", nargs="+")
    p.add_argument("--dest", default=str(zoo.PRETRAINED_DIR))
    p.add_argument("--check", type=int, default=1000, help="CIFAR-10 test images decoded before and after the float16 rounding")
    args = p.parse_args()
    from cae_compress.models import load_model, save_model
    from cae_compress.models.export import export_lite
    from cae_compress.runtime.files import ModelFiles
    from cae_compress.training.data import load_dataset

    images = load_dataset("cifar10").x_test[: args.check]
    dest = Path(args.dest)
    for run in map(Path, args.runs):
        name = run.name
        path = zoo.publish(run, name, dest)
        before = decoded(zoo.load(model_path=path, backend="litert"), images)
        model = load_model(path)
        model.set_weights([w.astype(np.float16).astype(w.dtype) for w in model.get_weights()])
        save_model(model, path)
        export_lite(load_model(path), path)
        after = decoded(zoo.load(model_path=path, backend="litert"), images)
        diff = np.abs(before.astype(int) - after.astype(int))
        meta = json.loads((run / "run.json").read_text())
        minutes = (datetime.datetime.fromisoformat(meta["finished"]) - datetime.datetime.fromisoformat(meta["created"])).total_seconds() / 60
        manifest_path = dest / f"{name}.json"
        manifest = json.loads(manifest_path.read_text())
        manifest.update({
            "training_minutes": round(minutes, 1),
            "training_machine": "2 CPU cores (shared with other work while it trained), no GPU",
            "weights": "rounded to float16 values after training (LiteRT files store float16)",
            "float16_check": {
                "images": len(images), "max_grey_levels_changed": int(diff.max()), "mean_grey_levels_changed": float(diff.mean()),
                "pixels_changed_by_more_than_1": float(np.mean(diff > 1)),
                "psnr_before": psnr(images, before), "psnr_after": psnr(images, after),
            },
            "sha256": sha(path),
            "sha256_lite": {q.name: sha(q) for q in ModelFiles(path).exported()},
        })
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
        size = sum(q.stat().st_size for q in dest.glob(f"{name}.*"))
        print(f"{name}: {size / 1e6:.2f} MB, float16 rounding: max {diff.max()} grey levels, mean {diff.mean():.4f}, "
              f"PSNR {manifest['float16_check']['psnr_before']:.3f} -> {manifest['float16_check']['psnr_after']:.3f} dB")


if __name__ == "__main__":
    main()
