"""Files made on one backend decode on the other with identical symbols: every image, several qualities.

    python benchmarks/cross_backend.py --images ../shared/data/kodak [--model NAME | --model-path PATH] [--qualities 0,31,50,100]

For each image and quality: encode with TensorFlow and with LiteRT, decode
each file with both.  Decoding checks the CRC-32 of every symbol against the
one the encoder stored, so a file that decodes at all decoded to identical
symbols; the script also reports how often the two encoders chose different
symbols (they may: the networks' floats differ slightly, and each file is
self-consistent) and the largest pixel difference between the two decoders
(and between their fast syntheses, for a model with one: ``--fast``).
"""

from __future__ import annotations

import argparse

import numpy as np

from cae_compress import codec, zoo
from cae_compress.io.images import list_images, read_image


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--images", required=True)
    p.add_argument("--model", default=None, help="a shipped model [default: the default model]")
    p.add_argument("--model-path", default=None, help="a trained model (.keras with its export) instead of a shipped one")
    p.add_argument("--qualities", default="0,50,100")
    args = p.parse_args()
    name = None if args.model_path else args.model
    lite, keras_model = (zoo.load(name, args.model_path, backend=b) for b in ("litert", "tensorflow"))
    files, same_files, worst, worst_fast = 0, 0, 0, 0
    for path in list_images(args.images):
        with open(path, "rb") as f:
            img = read_image(f.read(), str(path))[..., :3]
        for q in (int(v) for v in args.qualities.split(",")):
            made = [codec.encode(m, img, quality=q) for m in (keras_model, lite)]
            same_files += made[0] == made[1]
            for data in made:
                a, b = codec.decode(lite, data), codec.decode(keras_model, data)  # raises on a symbol checksum mismatch
                worst = max(worst, int(np.abs(a.astype(int) - b.astype(int)).max()))
                if lite.fast:
                    a, b = codec.decode(lite, data, fast=True), codec.decode(keras_model, data, fast=True)
                    worst_fast = max(worst_fast, int(np.abs(a.astype(int) - b.astype(int)).max()))
                files += 1
        print(f"{path.name}: ok", flush=True)
    print(f"{files} files decoded on both backends, every symbol checksum matched; "
          f"{same_files}/{files // 2} encodes byte-identical across backends; largest pixel difference between decoders: {worst}"
          + (f", between their fast syntheses: {worst_fast}" if lite.fast else ""))


if __name__ == "__main__":
    main()
