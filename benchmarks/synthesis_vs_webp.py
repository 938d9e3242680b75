"""A 12 MP photo's synthesis alone against Pillow's WebP decode to PNG, alternated in one process.

    python benchmarks/synthesis_vs_webp.py MODEL.keras [MODEL2.keras ...] [--images ../shared/data/kodak] [--runs 5]

The photo is the first of ``--images`` enlarged to 4000x3000
(``benchmarks/speed.py``'s ``big_photo``).  Each model's synthesis runs over
the photo's whole code grid, window by window as ``cae decode`` runs it
(``speed.synthesis_run``); the baseline opens a WebP (quality 75,
method 4) of the photo and writes the PNG at ``cae decode``'s PNG level.
Each is run ``--runs`` times, alternating, after a warm-up; medians of the
wall and CPU seconds (the process' CPU time, all threads), and their ratio
to the baseline.  Nothing here is a test.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from cae_compress import zoo
from cae_compress.io.images import PNG_LEVEL
from speed import big_photo, synthesis_run  # benchmarks/, this script's folder


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", help=".keras files with their LiteRT export")
    p.add_argument("--images", default=str(Path(__file__).resolve().parents[2] / "shared/data/kodak"))
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args(argv)
    first = sorted(Path(args.images).glob("*.png"))[0]
    with tempfile.TemporaryDirectory() as tmp:
        photo = Image.open(big_photo(first, Path(tmp) / "big.png")).convert("RGB")
    image = np.asarray(photo)
    buf = io.BytesIO()
    photo.save(buf, "WEBP", quality=75, method=4)
    webp = buf.getvalue()

    def webp_to_png():
        Image.open(io.BytesIO(webp)).convert("RGB").save(io.BytesIO(), "PNG", compress_level=PNG_LEVEL)

    jobs = {"Pillow: WebP -> PNG": webp_to_png}
    for path in args.models:
        jobs[f"{path}: synthesis alone"] = synthesis_run(zoo.load(None, path, backend="litert"), image.shape)
    times = {k: ([], []) for k in jobs}
    for job in jobs.values():
        job()
    for _ in range(args.runs):
        for name, job in jobs.items():
            wall, cpu = time.perf_counter(), time.process_time()
            job()
            times[name][0].append(time.perf_counter() - wall)
            times[name][1].append(time.process_time() - cpu)
    base = [statistics.median(v) for v in times["Pillow: WebP -> PNG"]]
    print(f"12 MP ({first.name} enlarged), median of {args.runs}, alternated\n")
    print("| | wall s | vs WebP -> PNG | CPU s | vs WebP -> PNG |\n|---|---:|---:|---:|---:|")
    for name, (wall, cpu) in times.items():
        w, c = statistics.median(wall), statistics.median(cpu)
        print(f"| {name} | {w:.2f} | {w / base[0]:.2f}x | {c:.2f} | {c / base[1]:.2f}x |")


if __name__ == "__main__":
    main()
