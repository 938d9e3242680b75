"""A second test set nobody trained on: the colour photographs that ship inside scikit-image, written as PNG.

    pip install scikit-image   # not a dependency of cae_compress: only this script reads its sample photos
    python benchmarks/second_set.py --out ~/second-set
    cae bench -d ~/second-set --models hyperprior --baselines jpeg,webp,avif,jxl
    python benchmarks/per_image.py --dataset ~/second-set --quality 0 --bpp 0.25

Six photographs of other sources and sizes than Kodak's (scikit-image's
``astronaut``, ``chelsea``, ``coffee``, ``motorcycle_left``, ``rocket``,
``hubble_deep_field``; 300x451 to 872x1000 pixels; two of them were JPEGs),
so a result on Kodak can be checked on photos that played no part in
choosing anything.  The files come from the installed package (no download).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png", "rocket.jpg", "hubble_deep_field.jpg")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True, help="the folder to write the PNG files to")
    args = p.parse_args()
    try:
        import skimage.data
    except ImportError:
        raise SystemExit("second_set.py: needs scikit-image (pip install scikit-image)") from None
    source = Path(skimage.data.__file__).parent
    out = Path(args.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    for name in PHOTOS:
        with Image.open(source / name) as im:
            im.convert("RGB").save(out / (Path(name).stem + ".png"))
    print(f"{len(PHOTOS)} photos in {out}")


if __name__ == "__main__":
    main()
