"""Measure file size and PSNR of every code dtype x payload compression, to choose the defaults.

    python benchmarks/dtype_defaults.py --model-path logs/dense/RUN/model.keras \
        [--cifar ../shared/data/cifar10.npz --limit 1000] [--kodak ../shared/data/kodak]

Prints a Markdown table: mean file bytes, bits per pixel and mean PSNR per
setting, over CIFAR-10 test images (one tile each) and over Kodak photos.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from cae_compress import codec
from cae_compress.io import format as fmt
from cae_compress.io.images import list_images, read_image
from cae_compress.evaluation.metrics import reconstruction_metrics
from cae_compress.zoo import load

SETTINGS = [(d, c) for d in ("float32", "float16", "uint8") for c in ("none", "zlib", "lzma")]


def measure(model, images):
    rows = {}
    for dtype, comp in SETTINGS:
        sizes, psnrs, pixels = [], [], 0
        t = time.perf_counter()
        for img in images:
            data = codec.encode(model, img, dtype, comp)
            out = codec.decode(model, data)
            sizes.append(len(data))
            pixels += img.shape[0] * img.shape[1]
            psnrs.append(reconstruction_metrics(img, out)["psnr"])
        rows[(dtype, comp)] = (np.mean(sizes), 8 * np.sum(sizes) / pixels, np.mean(psnrs), time.perf_counter() - t)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-path", required=True)
    ap.add_argument("--cifar", default="../shared/data/cifar10.npz")
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--kodak", default="../shared/data/kodak")
    args = ap.parse_args()
    model = load(model_path=args.model_path)
    sets = {}
    if Path(args.cifar).is_file():
        sets["CIFAR-10 test"] = list(np.load(args.cifar)["x_test"][: args.limit])
    if Path(args.kodak).is_dir():
        sets["Kodak"] = [read_image(p) for p in list_images(args.kodak)]
    print(f"model {model.name}: tile {model.tile_shape}, code length {model.code_length}, header {fmt.HEADER_SIZE} bytes\n")
    for name, images in sets.items():
        print(f"### {name} ({len(images)} images)\n")
        print("| dtype | compression | mean bytes | bpp | PSNR (dB) |")
        print("|---|---|---:|---:|---:|")
        for (dtype, comp), (size, bpp, psnr, _) in measure(model, images).items():
            print(f"| {dtype} | {comp} | {size:.0f} | {bpp:.3f} | {psnr:.2f} |")
        print()


if __name__ == "__main__":
    main()
