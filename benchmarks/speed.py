"""Speed and memory of cae against Pillow's codecs, whole process and in process: the README's speed table.

    python benchmarks/speed.py [--model hyperprior | --model-path M] [--also-model-path M2 ...] [--images ../shared/data/kodak] [--runs 5]

Two photos: the first of ``--images`` (a Kodak photo, 768x512) and a
12-megapixel one (4000x3000) made from it by Lanczos enlargement, as a phone
photo stands in here.  For each:

* whole process (median of ``--runs``; peak resident memory of the process,
  median too): ``cae encode``, ``cae decode`` and ``cae decode --fast`` (to
  PNG; ``--fast`` where the model has a fast synthesis), beside Python
  processes that do the same with Pillow: encode the PNG as JPEG (quality
  75), WebP (quality 75, method 4) and AVIF (quality 75, speed 6), and
  decode each of those to PNG, written at the PNG level ``cae decode``
  writes (``cae_compress.io.images.PNG_LEVEL``): the same work on both sides;
* in process (best of 3, after a warm-up): megapixels per second of
  ``codec.encode`` and of ``codec.decode`` to an array (no PNG) on LiteRT,
  beside Pillow's WebP encode and decode to an array (and ``codec.decode(...,
  fast=True)``: the fast synthesis' decode against the full one's);

and ``cae --help``; in process too, each model's synthesis alone on the
photo's code grid; ``--also-model-path``: more models (a cheaper decoder)
measured in the same run, whole process and in process.  Ratios are against Pillow measured in the same run:
cae encode / WebP encode, cae decode / WebP decode to PNG, and (Kodak) cae
decode / JPEG encode.  Nothing here is a test: a slow machine fails nothing.
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

from cae_compress.io.images import PNG_LEVEL

PILLOW = {  # name: (encode script, file suffix); every decode is "open, save PNG"
    "JPEG q75": ("Image.open('img.png').save('img.jpg', quality=75)", "jpg"),
    "WebP q75 m4": ("Image.open('img.png').save('img.webp', quality=75, method=4)", "webp"),
    "AVIF q75 s6": ("Image.open('img.png').save('img.avif', quality=75, speed=6)", "avif"),
}


def _process(cmd: list[str], cwd: str) -> tuple[float, float]:
    """Seconds and peak resident memory (MB) of one process."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed: {err.strip()[-500:]}")
    return seconds, usage.ru_maxrss / 1024


def _median(cmd: list[str], runs: int, cwd: str) -> tuple[float, float]:
    results = [_process(cmd, cwd) for _ in range(runs)]
    return statistics.median(r[0] for r in results), statistics.median(r[1] for r in results)


def whole_process(model_args: list[str], image: Path, runs: int, fast: bool = False, also: dict | None = None) -> dict[str, tuple[float, float]]:
    """The whole-process rows; ``also``: more models (label -> their ``--model-path`` arguments), their encode and decode beside."""
    cae = [shutil.which("cae")] if shutil.which("cae") else [sys.executable, "-m", "cae_compress"]
    py = [sys.executable, "-c"]
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(image, Path(tmp) / "img.png")
        for name, (script, suffix) in PILLOW.items():
            out[f"Pillow {name} encode"] = _median([*py, f"from PIL import Image; {script}"], runs, tmp)
            out[f"Pillow {name} decode to PNG"] = _median([*py, f"from PIL import Image; Image.open('img.{suffix}').save('out.png', compress_level={PNG_LEVEL})"], runs, tmp)
        out["cae encode"] = _median([*cae, "encode", "img.png", "-o", "img.cae", *model_args, "--force"], runs, tmp)
        out["cae decode to PNG"] = _median([*cae, "decode", "img.cae", "-o", "out.png", *model_args, "--force"], runs, tmp)
        if fast:
            out["cae decode --fast to PNG"] = _median([*cae, "decode", "--fast", "img.cae", "-o", "out.png", *model_args, "--force"], runs, tmp)
        for label, args in (also or {}).items():
            out[f"cae encode ({label})"] = _median([*cae, "encode", "img.png", "-o", "also.cae", *args, "--force"], runs, tmp)
            out[f"cae decode to PNG ({label})"] = _median([*cae, "decode", "also.cae", "-o", "out.png", *args, "--force"], runs, tmp)
        out["cae --help"] = _median([*cae, "--help"], runs, tmp)
    return out


def _throughput(fn, item, pixels: int, repeats: int = 3) -> float:
    fn(item)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn(item)
        best = min(best, time.perf_counter() - t)
    return pixels / best / 1e6


def synthesis_run(model, shape) -> callable:
    """A call of the model's synthesis alone over the code grid of an image of ``shape`` (every window; codes of zeros: the cost does not depend on them)."""
    from cae_compress.codecs import hyperprior as hp_codec

    rows, cols = (-(-v // hp_codec.PAD) * hp_codec.PAD // hp_codec.STRIDE for v in shape[:2])
    y = np.zeros((rows, cols, int(model.code_shape[-1]) if hasattr(model, "code_shape") else 192), np.float32)
    return lambda: model._synthesis(lambda a, b: y[a:b], rows, cols)


def synthesis_only(model, image: np.ndarray) -> float:
    """Megapixels per second of the model's synthesis alone on ``image``'s code grid (:func:`synthesis_run`)."""
    run = synthesis_run(model, image.shape)
    return _throughput(lambda _: run(), None, image.shape[0] * image.shape[1])


def in_process(model, image: np.ndarray, also=()) -> dict[str, tuple[float, float]]:
    from PIL import Image

    from cae_compress import codec

    pixels = image.shape[0] * image.shape[1]
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "WEBP", quality=75, method=4)
    webp = buf.getvalue()
    data = codec.encode(model, image)
    out = {
        "Pillow WebP q75 m4": (
            _throughput(lambda im: Image.fromarray(im).save(io.BytesIO(), "WEBP", quality=75, method=4), image, pixels),
            _throughput(lambda d: np.asarray(Image.open(io.BytesIO(d)).convert("RGB")), webp, pixels),
        ),
        f"cae {model.name} ({model.backend})": (
            _throughput(lambda im: codec.encode(model, im), image, pixels),
            _throughput(lambda d: codec.decode(model, d), data, pixels),
        ),
    }
    if model.fast:  # the same file through the fast synthesis (decode only: the encode is the same)
        out[f"cae {model.name} --fast ({model.backend})"] = (float("nan"), _throughput(lambda d: codec.decode(model, d, fast=True), data, pixels))
    for other in also:
        other_data = codec.encode(other, image)
        out[f"cae {other.name} ({other.backend})"] = (_throughput(lambda im: codec.encode(other, im), image, pixels),
                                                    _throughput(lambda d: codec.decode(other, d), other_data, pixels))
    if hasattr(model, "_synthesis"):  # the synthesis alone (decode only)
        for m in (model, *also):
            out[f"{m.name}: synthesis alone"] = (float("nan"), synthesis_only(m, image))
    return out


def big_photo(source: Path, dest: Path, size=(4000, 3000)) -> Path:
    """``source`` enlarged to ``size`` (Lanczos), made in a child process so this one stays small (see :func:`main`)."""
    script = f"from PIL import Image; Image.open({str(source)!r}).convert('RGB').resize({size!r}, Image.LANCZOS).save({str(dest)!r}, compress_level=1)"
    subprocess.run([sys.executable, "-c", script], check=True)
    return dest


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="a shipped model [default: the default model]")
    ap.add_argument("--model-path", default=None)
    ap.add_argument("--images", default="../shared/data/kodak")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--also-model-path", action="append", default=[], help="another model measured in the same run (repeatable), e.g. a shallow one")
    args = ap.parse_args()
    from cae_compress import zoo
    from cae_compress.io.images import list_images, read_image

    files = list_images(args.images)
    if not files:
        sys.exit(f"no images in {args.images}")
    if args.model_path:
        args.model_path = str(Path(args.model_path).resolve())  # the whole-process runs start in a temporary folder
        model_args = ["--model-path", args.model_path]
    else:
        model_args = ["--model", args.model] if args.model else []
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; model: {args.model_path or args.model or 'default'}\n")
    with tempfile.TemporaryDirectory() as tmp:
        photos = [("Kodak " + files[0].stem, files[0]), ("12 MP (4000x3000)", big_photo(files[0], Path(tmp) / "big.png"))]
        # every process first, while this one is small: Linux counts a child's peak memory from the size of the
        # process it was forked from, so a benchmark holding a model and a 12 MP image would inflate every number
        from cae_compress.runtime.files import ModelFiles

        fast = ModelFiles(zoo.model_file(args.model, args.model_path)[0]).tflite("fast_decoder").is_file()  # a fast synthesis beside the model
        also = {Path(p).stem: ["--model-path", str(Path(p).resolve())] for p in args.also_model_path}
        results = [whole_process(model_args, path, args.runs, fast, also) for _, path in photos]
        model = zoo.load(args.model, model_path=args.model_path)
        others = [zoo.load(model_path=str(Path(p).resolve())) for p in args.also_model_path]
        for (label, path), res in zip(photos, results):
            image = read_image(path)
            print(f"### {label}: whole process, median of {args.runs}\n")
            print("| command | seconds | peak MB |\n|---|---:|---:|")
            for name, (sec, mb) in res.items():
                print(f"| {name} | {sec:.2f} | {mb:.0f} |")
            enc, dec = res["cae encode"][0], res["cae decode to PNG"][0]
            print(f"\ncae encode / WebP encode: {enc / res['Pillow WebP q75 m4 encode'][0]:.2f}x; "
                  f"cae decode / WebP decode to PNG: {dec / res['Pillow WebP q75 m4 decode to PNG'][0]:.2f}x; "
                  f"cae decode / JPEG encode: {dec / res['Pillow JPEG q75 encode'][0]:.2f}x"
                  + (f"; cae decode --fast / WebP decode to PNG: {res['cae decode --fast to PNG'][0] / res['Pillow WebP q75 m4 decode to PNG'][0]:.2f}x, "
                     f"cae decode / cae decode --fast: {dec / res['cae decode --fast to PNG'][0]:.2f}x" if fast else "")
                  + "".join(f"; cae decode ({label}) / WebP decode to PNG: {res[f'cae decode to PNG ({label})'][0] / res['Pillow WebP q75 m4 decode to PNG'][0]:.2f}x"
                            for label in also) + "\n")
            print(f"In process, best of 3 (megapixels per second):\n\n| codec | encode MP/s | decode to an array MP/s |\n|---|---:|---:|")
            rows = in_process(model, image, others)
            for name, (e, d) in rows.items():
                print(f"| {name} | {'(the same)' if np.isnan(e) else f'{e:.2f}'} | {d:.2f} |")
            webp_png = res["Pillow WebP q75 m4 decode to PNG"][0]
            alone = [(name.split(":")[0], image.shape[0] * image.shape[1] / 1e6 / d) for name, (_, d) in rows.items() if name.endswith("synthesis alone")]
            if alone:  # issue 38's measure: a synthesis' seconds on this photo against a whole Pillow WebP decode to PNG
                print("\n" + "; ".join(f"{n} synthesis alone {sec:.2f} s / WebP decode to PNG (whole process) {webp_png:.2f} s: {sec / webp_png:.2f}x"
                                        for n, sec in alone))
            print()


if __name__ == "__main__":
    main()
