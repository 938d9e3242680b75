"""Speed of cae against Pillow, whole process and in-process; a table for the README.

    python benchmarks/speed.py --model-path MODEL [--images ../shared/data/kodak] [--runs 5]

Whole process (median of --runs runs, on the first image):
  * ``cae encode IMG`` and ``cae decode IMG.cae``, against a Python process that
    opens the same PNG with Pillow and saves it as JPEG (quality 75);
  * ``cae --help``.
In-process (all images, each codec warmed up first): megapixels per second of
``codec.encode`` / ``codec.decode`` with the LiteRT path and the TensorFlow
path, against Pillow's JPEG encode/decode of the same images.

Ratios are against the Pillow baseline measured in the same run; nothing here
is a test, so a slow machine fails nothing.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _median_seconds(cmd: list[str], runs: int, cwd: str) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def whole_process(model_path: str, image: Path, runs: int) -> list[tuple[str, float, str]]:
    cae = shutil.which("cae") or f"{sys.executable} -m cae_compress"
    cae = cae.split()
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(image, Path(tmp) / "img.png")
        pillow = _median_seconds([py, "-c", "from PIL import Image; Image.open('img.png').save('img.jpg', quality=75)"], runs, tmp)
        enc = _median_seconds([*cae, "encode", "img.png", "--model-path", model_path, "--force"], runs, tmp)
        dec = _median_seconds([*cae, "decode", "img.cae", "--model-path", model_path, "--force"], runs, tmp)
        enc_tf = _median_seconds([*cae, "encode", "img.png", "-o", "tf.cae", "--model-path", model_path, "--force", "--backend", "tensorflow"], max(1, runs // 2), tmp)
        helps = _median_seconds([*cae, "--help"], runs, tmp)
    return [
        ("Pillow: open PNG, save JPEG (python process)", pillow, "1.0x"),
        ("cae encode (LiteRT)", enc, f"{enc / pillow:.1f}x"),
        ("cae decode (LiteRT)", dec, f"{dec / pillow:.1f}x"),
        ("cae encode --backend tensorflow", enc_tf, f"{enc_tf / pillow:.1f}x"),
        ("cae --help", helps, f"{helps / pillow:.1f}x"),
    ]


def _throughput(fn, items, pixels: int, repeats: int = 3) -> float:
    fn(items[0])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for it in items:
            fn(it)
        best = min(best, time.perf_counter() - t)
    return pixels / best / 1e6


def in_process(model_path: str, images: list[np.ndarray]) -> list[tuple[str, float, float]]:
    from PIL import Image

    from cae_compress import codec, zoo

    pixels = sum(im.shape[0] * im.shape[1] for im in images)
    jpegs = []
    for im in images:
        buf = io.BytesIO()
        Image.fromarray(im).save(buf, "JPEG", quality=75)
        jpegs.append(buf.getvalue())

    def pil_encode(im):
        Image.fromarray(im).save(io.BytesIO(), "JPEG", quality=75)

    def pil_decode(data):
        np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))

    rows = [("Pillow JPEG q75", _throughput(pil_encode, images, pixels), _throughput(pil_decode, jpegs, pixels))]
    for backend in ("litert", "tensorflow"):
        model = zoo.load(model_path=model_path, backend=backend)
        files = [codec.encode(model, im) for im in images]
        rows.append((
            f"cae {backend}",
            _throughput(lambda im: codec.encode(model, im), images, pixels),
            _throughput(lambda d: codec.decode(model, d), files, pixels),
        ))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-path", required=True)
    ap.add_argument("--images", default="../shared/data/kodak")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    args.model_path = str(Path(args.model_path).resolve())  # the whole-process runs start in a temporary folder
    from cae_compress.images import list_images, read_image

    files = list_images(args.images)
    if not files:
        sys.exit(f"no images in {args.images}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"images: {len(files)} from {args.images}; model: {args.model_path}\n")
    print(f"### Whole process, {files[0].name} ({'x'.join(map(str, read_image(files[0]).shape[1::-1]))}), median of {args.runs}\n")
    print("| command | seconds | vs Pillow |\n|---|---:|---:|")
    for name, sec, ratio in whole_process(args.model_path, files[0], args.runs):
        print(f"| {name} | {sec:.3f} | {ratio} |")
    images = [read_image(f) for f in files]
    images = [im if im.shape[-1] == 3 else np.repeat(im, 3, -1) for im in images]
    print(f"\n### In-process throughput, {len(images)} images, best of 3\n")
    print("| codec | encode MP/s | decode MP/s |\n|---|---:|---:|")
    for name, enc, dec in in_process(args.model_path, images):
        print(f"| {name} | {enc:.1f} | {dec:.1f} |")


if __name__ == "__main__":
    main()
