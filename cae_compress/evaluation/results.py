"""Result files in the shape the learned-compression field reads: one JSON file per codec, as CompressAI publishes.

A file is ``{"name": ..., "description": ..., "results": {"bpp": [...],
"psnr-rgb": [...], "ms-ssim-rgb": [...], "encoding_time": [...],
"decoding_time": [...]}}``: one list entry per rate point, all lists of
equal length (the shape of CompressAI's ``results/image/kodak/*.json``,
which its ``python -m compressai.utils.plot`` draws).  ``cae bench
--results-dir`` writes one per codec it ran; ``cae bench --compare FILE``
reads files of this shape (ours or published ones) as curves to compare with.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from cae_compress.errors import CaeError
from cae_compress.io.files import atomic_write, make_folder

REQUIRED = ("bpp", "psnr-rgb")


@dataclass
class Curve:
    """A codec's rate points read from a result file."""

    name: str
    bpp: list[float]
    psnr: list[float]
    ms_ssim: list[float] | None
    source: str


def result_file(name: str, description: str, bpp, psnr, ms_ssim, encoding_time, decoding_time) -> dict:
    return {
        "name": name,
        "description": description,
        "results": {
            "bpp": [float(v) for v in bpp],
            "psnr-rgb": [float(v) for v in psnr],
            "ms-ssim-rgb": [float(v) for v in ms_ssim],
            "encoding_time": [float(v) for v in encoding_time],
            "decoding_time": [float(v) for v in decoding_time],
        },
    }


def write_dir(files: list[dict], folder: str | Path) -> list[Path]:
    """Write each result file as ``<folder>/<name>.json`` (the name made safe for a file name), atomically."""
    folder = make_folder(folder)
    paths = []
    for data in files:
        path = folder / (re.sub(r"[^A-Za-z0-9._-]+", "_", data["name"]) + ".json")
        atomic_write(path, (json.dumps(data, indent=2) + "\n").encode())
        paths.append(path)
    return paths


def read_curve(path: str | Path) -> Curve:
    """A result file of the shape above, checked; anything else is one clear error."""
    bad = f"{path}: not a result file of CompressAI's shape ({{}}; expected 'name' and 'results' with equal-length lists 'bpp' and 'psnr-rgb')"
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise CaeError(f"{path}: cannot read ({exc.strerror})") from None
    except ValueError as exc:
        raise CaeError(bad.format(f"not JSON: {exc}")) from None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not isinstance(data.get("results"), dict):
        raise CaeError(bad.format("no top-level 'name' and 'results'"))
    results = data["results"]
    missing = [k for k in REQUIRED if k not in results]
    if missing:
        raise CaeError(bad.format(f"missing {', '.join(missing)}"))
    lists = {k: v for k, v in results.items() if isinstance(v, list)}
    if any(not isinstance(results[k], list) for k in REQUIRED) or len({len(v) for v in lists.values()}) != 1 or not lists["bpp"]:
        raise CaeError(bad.format("lists of different lengths or empty"))
    try:
        bpp = [float(v) for v in results["bpp"]]
        psnr = [float(v) for v in results["psnr-rgb"]]
        ms = [float(v) for v in results["ms-ssim-rgb"]] if isinstance(results.get("ms-ssim-rgb"), list) else None
    except (TypeError, ValueError):
        raise CaeError(bad.format("values that are not numbers")) from None
    return Curve(data["name"], bpp, psnr, ms, str(path))
