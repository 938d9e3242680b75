"""Write the golden .cae files of tests/golden with the code of this checkout (run once per release).

Each file is a small crop of the bundled sample image, encoded by one model;
``golden.json`` records, per file, the model, the format version and the
sha256 of the decoded pixels (and, for a model with a fast synthesis, of the
pixels ``cae decode --fast`` gives).  ``tests/test_golden.py`` decodes every file on
every run and compares: a change that breaks an old file fails CI.

    python tools/make_golden.py [RELEASE [MODEL ...]]   # adds files for the models of this release; never rewrites one
    python tools/make_golden.py RELEASE --v4 [MODEL ...]   # only the version 4 files (alpha, ICC, EXIF, XMP) of these models

A version 4 file (``RELEASE-MODEL-v4.cae``) is the small crop with an alpha
plane (a disc with a soft edge) and fixed ICC, EXIF and XMP bytes; its entry
also records the sha256 of each of them as the file carries them.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"


def _sample(h, w, y0=40, x0=60):
    with Image.open(ROOT / "cae_compress" / "assets" / "sample.png") as im:
        return np.asarray(im.convert("RGB"))[y0 : y0 + h, x0 : x0 + w].copy()


def _tall() -> np.ndarray:
    """A 1024x40 strip (a 40-pixel column of the sample, stacked four times, every other one upside down): more than one band of a hyperprior file."""
    strip = _sample(256, 40, 0, 170)
    return np.concatenate([strip, strip[::-1], strip, strip[::-1]])


def _v4() -> tuple[np.ndarray, "object"]:
    """The small crop as RGBA (alpha: a disc with a soft edge) and the metadata of a version 4 golden file."""
    from cae_compress.io.container import Extras

    rgb = _sample(37, 45)
    yy, xx = np.mgrid[0:37, 0:45]
    alpha = np.clip((16 - np.hypot(yy - 18, xx - 22)) * 64, 0, 255).astype(np.uint8)
    exif = b"II*\0\x08\0\0\0\x02\0\x0f\x01\x02\0\x07\0\0\0\x26\0\0\0\x12\x01\x03\0\x01\0\0\0\x01\0\0\0\0\0\0\0CaeCam\0"
    extras = Extras(icc_profile=b"golden ICC profile bytes, as given" * 4, exif=exif, xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/"/>')
    return np.concatenate([rgb, alpha[..., None]], axis=-1), extras


V4_SOURCE = "cae_compress/assets/sample.png rows 40-76, columns 60-104, alpha a disc of radius 16 with a 4-pixel edge; fixed ICC, EXIF, XMP bytes (tools/make_golden.py)"
TALL_SOURCE = "cae_compress/assets/sample.png columns 170-209, all rows, stacked 4 times (every other one upside down): 1024x40"


def main(release: str, only: list[str], v4: bool = False) -> None:
    from cae_compress import codec, zoo

    GOLDEN.mkdir(parents=True, exist_ok=True)
    index_path = GOLDEN / "golden.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    jobs = [(name, zoo.model_file(name)[0]) for name in zoo.shipped_models()]
    tiny = GOLDEN / "tiny-dense.keras"
    if tiny.exists():
        jobs.append(("tiny-dense", tiny))
    if only:
        jobs = [(name, path) for name, path in jobs if name in only]
    shipped = zoo.shipped_models()
    for name, path in jobs:
        model = zoo.load(model_path=path, backend="litert")
        files = [(f"{release}-{name}.cae", _sample(37, 45), "cae_compress/assets/sample.png rows 40-76, columns 60-104", None)]
        if model.version == 3:  # the hyperprior family: a file of several bands too
            files.append((f"{release}-{name}-tall.cae", _tall(), TALL_SOURCE, None))
        if v4:
            files = [(f"{release}-{name}-v4.cae", *_v4()[:1], V4_SOURCE, _v4()[1])]
        for fname, pixels, source, extras in files:
            if fname in index:
                continue
            data = codec.encode(model, pixels, extras=extras)
            decoded, carried = codec.decode(model, data, with_extras=True)
            (GOLDEN / fname).write_bytes(data)
            index[fname] = {
                "release": release, "model": name, "model_path": None if name in shipped else tiny.name,
                "version": data[4], "bytes": len(data), "shape": list(decoded.shape),
                "decoded_sha256": hashlib.sha256(np.ascontiguousarray(decoded).tobytes()).hexdigest(),
                "source": source,
            }
            if extras is not None:  # what the chunks carry, byte for byte
                index[fname]["chunks_sha256"] = {k: hashlib.sha256(v).hexdigest() for k, v in
                                                 (("icc", carried.icc_profile), ("exif", carried.exif), ("xmp", carried.xmp), ("alpha", carried.alpha))}
            if model.fast:
                fast = codec.decode(model, data, fast=True)
                index[fname]["fast_decoded_sha256"] = hashlib.sha256(np.ascontiguousarray(fast).tobytes()).hexdigest()
            print(fname, len(data), data[4])
    index_path.write_text(json.dumps(dict(sorted(index.items())), indent=2) + "\n")


if __name__ == "__main__":
    args = sys.argv[1:]
    v4 = "--v4" in args
    args = [a for a in args if a != "--v4"]
    main(args[0] if args else __import__("cae_compress").__version__, args[1:], v4)
