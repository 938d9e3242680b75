"""Write the golden .cae files of tests/golden with the code of this checkout (run once per release).

Each file is a small crop of the bundled sample image, encoded by one model;
``golden.json`` records, per file, the model, the format version and the
sha256 of the decoded pixels (and, for a model with a fast synthesis, of the
pixels ``cae decode --fast`` gives).  ``tests/test_golden.py`` decodes every file on
every run and compares: a change that breaks an old file fails CI.

    python tools/make_golden.py [RELEASE [MODEL ...]]   # adds files for the models of this release; never rewrites one
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


TALL_SOURCE = "cae_compress/assets/sample.png columns 170-209, all rows, stacked 4 times (every other one upside down): 1024x40"


def main(release: str, only: list[str]) -> None:
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
        files = [(f"{release}-{name}.cae", _sample(37, 45), "cae_compress/assets/sample.png rows 40-76, columns 60-104")]
        if model.version == 3:  # the hyperprior family: a file of several bands too
            files.append((f"{release}-{name}-tall.cae", _tall(), TALL_SOURCE))
        for fname, pixels, source in files:
            if fname in index:
                continue
            data = codec.encode(model, pixels)
            decoded = codec.decode(model, data)
            (GOLDEN / fname).write_bytes(data)
            index[fname] = {
                "release": release, "model": name, "model_path": None if name in shipped else tiny.name,
                "version": data[4], "bytes": len(data), "shape": list(decoded.shape),
                "decoded_sha256": hashlib.sha256(np.ascontiguousarray(decoded).tobytes()).hexdigest(),
                "source": source,
            }
            if model.fast:
                fast = codec.decode(model, data, fast=True)
                index[fname]["fast_decoded_sha256"] = hashlib.sha256(np.ascontiguousarray(fast).tobytes()).hexdigest()
            print(fname, len(data), data[4])
    index_path.write_text(json.dumps(dict(sorted(index.items())), indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else __import__("cae_compress").__version__, sys.argv[2:])
