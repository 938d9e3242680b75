"""The training photos as JPEGs small enough to carry to a lent GPU machine (its transfer holds 64 MiB in all).

    python tools/make_gpu_data.py --photos ../shared/data/photos --out /tmp/gpu-photos --budget-mb 36

Every photo re-encoded as JPEG (4:4:4, no chroma subsampling), all at one
quality: the highest whose files fit ``--budget-mb`` together (bisection),
so that the weights to start from fit beside them.  Never Kodak.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from PIL import Image


def encode(path: Path, quality: int) -> bytes:
    with Image.open(path) as im:
        out = io.BytesIO()
        im.convert("RGB").save(out, "JPEG", quality=quality, subsampling=0)
        return out.getvalue()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--photos", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--budget-mb", type=float, default=36.0)
    args = p.parse_args()
    files = sorted(f for f in Path(args.photos).rglob("*") if f.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"))
    if any("kodak" in f.parts for f in files):
        raise SystemExit("Kodak is the test set: never train on it")
    budget = args.budget_mb * 2**20
    lo, hi, best = 50, 95, None
    while lo <= hi:
        q = (lo + hi) // 2
        total = sum(len(encode(f, q)) for f in files)
        print(f"quality {q}: {total / 2**20:.1f} MiB", flush=True)
        if total <= budget:
            best, lo = q, q + 1
        else:
            hi = q - 1
    if best is None:
        raise SystemExit(f"even quality 50 is over {args.budget_mb} MiB")
    out = Path(args.out)
    for f in files:
        target = out / f.relative_to(args.photos).with_suffix(".jpg")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(encode(f, best))
    print(f"{len(files)} photos at JPEG quality {best} in {out}")


if __name__ == "__main__":
    main()
