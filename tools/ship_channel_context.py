"""Build cae_compress/pretrained/channel-context.* from the weights trained on a lent GPU, with its manifest.

    python tools/ship_channel_context.py --export ../shared/weights/channel-context-gpu --kodak-psnr 32.4 --kodak-bpp 0.49 --rebuild

``--export`` is the folder ``tools/gpu_train_channel_context.py`` wrote (the
channel-context model with three top anchors) with, in ``fast-synthesis/``,
the 128/64/32 synthesis ``tools/gpu_train_synthesis.py`` distilled for it.
Loads both into one Keras model (``channel_context.from_torch_export(...,
fast=...)``: the fast synthesis is the model's ``fast_decoder``, with its own
inverse gains), saves ``channel-context.keras`` (its weights are float16
values already: the export stores float16), exports the LiteRT graphs and
the integer parameters, and writes ``channel-context.json``: how each part
was trained (the facts of the export's README) and the sha256 of every file
(``tests/test_shipped.py`` checks them).  Without ``--rebuild`` only the
manifest is rewritten.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

NAME = "channel-context"
SCRIPTS_COMMIT = "a08d542"  # the project's tools the GPU run used (tools/gpu_train_*.py at this commit)
WHERE = "one NVIDIA H200 (the lent GPU machine), PyTorch 2.11, 2026-12-04"
DATA = "../shared/data/photos (446 photos: CID22 training, BSDS500 train, gb82, McMaster, Urban100) as 4:4:4 JPEG quality 92 (tools/make_gpu_data.py --budget-mb 44); never Kodak"

TRAINING = [
    {
        "stage": "start",
        "what": "the shipped hyperprior (cae_compress/pretrained/hyperprior.json), its weights exported for the mirror; contexts warm-started so that the model codes exactly the hyperprior's symbols",
        "command": "python tools/gpu_train_channel_context.py --export-hyperprior",
    },
    {
        "stage": "channel context",
        "what": "joint fine-tune of every network, contexts included, with three rate anchors above the hyperprior's six (lambda 0.0932, 0.18, 0.36), each image's loss over its anchor's running mean",
        "where": WHERE,
        "command": "python tools/gpu_train_channel_context.py --minutes 7.8 --total-minutes 7.8 --top-anchors --balance-anchors",
        "data": DATA,
        "batch": "16 crops of 256x256",
        "learning_rate": "1e-4 cosine to 1e-5",
        "steps": 13156,
        "minutes": 7.8,
        "scripts_commit": SCRIPTS_COMMIT,
    },
    {
        "stage": "fast synthesis",
        "what": "a 128/64/32 synthesis (fast_decoder, with its own inverse gains) distilled from the model's frozen codes against the original crops, started from the teacher synthesis' most used channels: two segments of 2.2 minutes on snapshots of the channel-context run while it trained, then 4 minutes on its final weights; its loss stayed about 10 % above the teacher's on the same crops (+9.8 % at the end)",
        "where": WHERE,
        "command": "python tools/gpu_train_synthesis.py --widths 128,64,32",
        "data": DATA,
        "batch": "16 crops of 256x256",
        "learning_rate": "2e-4 cosine to 1e-5",
        "steps": 41654,
        "steps_on_final_weights": 22000,
        "scripts_commit": SCRIPTS_COMMIT,
    },
]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    from cae_compress import zoo

    p = argparse.ArgumentParser()
    p.add_argument("--export", required=True, help="the GPU run's folder (fast-synthesis/ inside it)")
    p.add_argument("--kodak-psnr", type=float, required=True, help="Kodak PSNR at the default quality, from cae bench")
    p.add_argument("--kodak-bpp", type=float, required=True, help="Kodak bpp at the default quality, from cae bench")
    p.add_argument("--top-psnr", type=float, help="Kodak PSNR at quality 100, from the same cae bench run")
    p.add_argument("--top-bpp", type=float, help="Kodak bpp at quality 100, from the same cae bench run")
    p.add_argument("--dest", default=str(zoo.PRETRAINED_DIR))
    p.add_argument("--rebuild", action="store_true", help="rebuild the weights and graphs (else only rewrite the manifest)")
    args = p.parse_args()
    from cae_compress.models import load_model, save_model
    from cae_compress.models.channel_context import from_torch_export
    from cae_compress.models.export import export_lite
    from cae_compress.runtime.files import ModelFiles

    dest = Path(args.dest)
    path = dest / f"{NAME}.keras"
    if args.rebuild or not path.exists():
        model = from_torch_export(args.export, fast=Path(args.export) / "fast-synthesis")
        save_model(model, path)
        export_lite(load_model(path), path)
    model = load_model(path)
    beside = ModelFiles(path).exported()
    test = {"dataset": "kodak (24 photos), default quality, real file sizes", "quality": model.default_quality, "psnr": args.kodak_psnr, "bpp": args.kodak_bpp}
    if args.top_psnr is not None:
        test["quality_100"] = {"psnr": args.top_psnr, "bpp": args.top_bpp}
    manifest = {
        "name": NAME,
        "architecture": "channel-context",
        "code_length": model.code_length,
        "tile_shape": list(model.tile_shape),
        "parameters": int(sum(w.size for w in model.get_weights())),
        "synthesis_widths": [int(model.decoder.get_layer(f"deconv_{i}").filters) for i in range(3)],
        "fast_synthesis_widths": [int(model.fast_decoder.get_layer(f"deconv_{i}").filters) for i in range(3)],
        "dataset": "photos",
        "data": DATA,
        "epochs": None,
        "command": TRAINING[1]["command"],
        "training": TRAINING,
        "loss": "lambda * 255^2 * MSE + bpp, lambda drawn per image from the nine anchors, each image's loss divided by its anchor's running mean (--balance-anchors); Adam, gradient norm clipped at 1",
        "lambdas": list(model.lambdas),
        "default_quality": model.default_quality,
        "weights": "float16 values (kept as float32 in .keras; LiteRT files store float16, except the analysis up to gdn_2: int8 weights, run on int8 (.encoder.tflite), then float (.encoder.tail.tflite))",
        "test": test,
        "sha256": sha(path),
        "sha256_lite": {f.name: sha(f) for f in beside},
    }
    (dest / f"{NAME}.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(json.dumps({k: manifest[k] for k in ("parameters", "default_quality", "test", "sha256")}, indent=2))


if __name__ == "__main__":
    main()
