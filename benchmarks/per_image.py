"""Per image, a cae model against WebP at equal bytes: where does it lose, and by how much?

    python benchmarks/per_image.py --dataset ../shared/data/kodak --quality 0 --bpp 0.25

For each image: the .cae file at ``--quality`` (and, with ``--bpp``, at the
highest quality that fits that many bits per pixel), then WebP (method 6)
at the largest quality whose file is no larger, and the PSNR of each
decoded image against the original.  Prints one line per image and the
median and worst difference (cae - WebP, dB).
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

from cae_compress import codec, zoo
from cae_compress.evaluation.baselines import classic_at_bytes, classic_decode
from cae_compress.io.images import list_images, read_image


def psnr(a, b):
    return 10 * np.log10(255.0**2 / np.mean((a.astype(float) - b.astype(float)) ** 2))


def at_bpp(model, img, bpp):
    """The highest-quality file within ``bpp`` (quality 0 if none fits), as ``cae encode --bpp`` picks it."""
    return codec.encode_within(model, img, bpp * img.shape[0] * img.shape[1] / 8)[0]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dataset", required=True)
    p.add_argument("--model", default="hyperprior")
    p.add_argument("--quality", type=int, default=0)
    p.add_argument("--bpp", type=float, default=None)
    args = p.parse_args()
    model = zoo.load(args.model)
    settings = [(f"q{args.quality}", lambda img: codec.encode(model, img, quality=args.quality))]
    if args.bpp:
        settings.append((f"{args.bpp} bpp", lambda img: at_bpp(model, img, args.bpp)))
    diffs = {name: [] for name, _ in settings}
    for path in list_images(args.dataset):
        with open(path, "rb") as f:
            img = read_image(f.read(), str(path))[..., :3]
        parts = [path.name]
        for name, enc in settings:
            data = enc(img)
            ours = psnr(img, codec.decode(model, data))
            webp, _ = classic_at_bytes(img, "webp", len(data))
            theirs = psnr(img, classic_decode(webp, 3))
            diffs[name].append(ours - theirs)
            parts.append(f"{name}: {8 * len(data) / img.shape[0] / img.shape[1]:.3f} bpp cae {ours:.2f} webp {theirs:.2f} ({ours - theirs:+.2f})")
        print("  ".join(parts), flush=True)
    for name, d in diffs.items():
        print(f"{name}: cae - WebP at equal bytes: median {statistics.median(d):+.2f} dB, worst {min(d):+.2f} dB, best {max(d):+.2f} dB")


if __name__ == "__main__":
    main()
