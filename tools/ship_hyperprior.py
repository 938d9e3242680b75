"""Build cae_compress/pretrained/hyperprior.* from the weights that tools/gpu_train_hyperprior.py exported, with its manifest.

    python tools/ship_hyperprior.py --export ~/cae-runs/hyperprior-gpu/stage1 --kodak-psnr 32.49 --kodak-bpp 0.505

Loads the exported ``.npz`` files into the Keras model, rounds the weights to
float16 values (see ``hyperprior.round_weights_to_float16``), saves
``hyperprior.keras``, exports the LiteRT graphs and the integer parameters,
and writes ``hyperprior.json``: how it was trained and the sha256 of every
file (``tests/test_shipped.py`` checks them).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path


TRAINING = [
    {
        "stage": "1a",
        "where": "one NVIDIA H100 (the lent GPU machine), PyTorch 2.11, TF32",
        "command": "python tools/gpu_train_hyperprior.py --photos PHOTOS --out OUT --ckpt CKPT --minutes 8.3 --total-minutes 23",
        "data": "../shared/data/photos (446 photos) re-encoded as JPEG quality 88, 4:4:4, to fit the machine's 64 MiB transfer",
        "steps": 21477,
        "minutes": 8.3,
    },
    {
        "stage": "1b",
        "where": "a fresh H100 machine (the first was given back between calls), Adam state lost",
        "command": "python tools/gpu_train_hyperprior.py --photos PHOTOS --out OUT --ckpt CKPT --init-npz STAGE_1A --trained-minutes 8.3 --minutes 8.6 --total-minutes 21.5",
        "data": "the same photos re-encoded as JPEG quality 84, 4:4:4, without mcmaster/ (428 photos), to fit the transfer beside the stage 1a weights",
        "steps": 23553,
        "minutes": 8.6,
    },
]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    from cae_compress import zoo

    p = argparse.ArgumentParser()
    p.add_argument("--export", required=True)
    p.add_argument("--kodak-psnr", type=float, required=True, help="Kodak PSNR at the default quality, from cae bench")
    p.add_argument("--kodak-bpp", type=float, required=True, help="Kodak bpp at the default quality, from cae bench")
    p.add_argument("--dest", default=str(zoo.PRETRAINED_DIR))
    p.add_argument("--rebuild", action="store_true", help="rebuild the weights and graphs (else only rewrite the manifest)")
    args = p.parse_args()
    from cae_compress.codecs import hyperprior as hypercodec
    from cae_compress.models import load_model, save_model
    from cae_compress.models.export import export_lite
    from cae_compress.models.hyperprior import LAMBDAS, build_hyperprior_model, load_torch_export, round_weights_to_float16
    from cae_compress.runtime.files import ModelFiles

    dest = Path(args.dest)
    path = dest / "hyperprior.keras"
    if args.rebuild or not path.exists():
        model = build_hyperprior_model()
        load_torch_export(model, args.export)
        round_weights_to_float16(model)
        save_model(model, path)
        export_lite(load_model(path), path)
    model = load_model(path)
    beside = ModelFiles(path).exported()  # lite.json, every .tflite (the analysis' parts too), hyper.npz
    manifest = {
        "name": "hyperprior",
        "architecture": "hyperprior",
        "code_length": model.code_length,
        "tile_shape": list(model.tile_shape),
        "parameters": int(sum(w.size for w in model.get_weights())),
        "dataset": "photos",
        "data": "../shared/data/photos: CID22 training, BSDS500 train, gb82, McMaster, Urban100 (446 photos); never Kodak",
        "epochs": None,
        "command": TRAINING[-1]["command"],
        "training": TRAINING,
        "crops": "256x256, batch 16, random image weighted by area, 30 % shrunk by 0.6-1 first, flips and transposes",
        "loss": "lambda * 255^2 * MSE + bpp, lambda drawn per image from the anchors; Adam lr 5e-4 cosine to 1e-5, gradient norm clipped at 1",
        "lambdas": list(LAMBDAS),
        "default_quality": hypercodec.DEFAULT_QUALITY,
        "weights": "float16 values (kept as float32 in .keras; LiteRT files store float16, except the analysis up to gdn_1: int8 weights, run on int8 (hyperprior.encoder.tflite), then float (hyperprior.encoder.tail.tflite))",
        "test": {"dataset": "kodak (24 photos), quality 50, real file sizes", "psnr": args.kodak_psnr, "bpp": args.kodak_bpp},
        "sha256": sha(path),
        "sha256_lite": {f.name: sha(f) for f in beside},
    }
    (dest / "hyperprior.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(json.dumps({k: manifest[k] for k in ("parameters", "test", "sha256")}, indent=2))


if __name__ == "__main__":
    main()
