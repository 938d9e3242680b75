"""What a context costs a decode: the channel-conditional context's networks against a checkerboard's, beside the synthesis.

    python benchmarks/context_cost.py [--runs 5]

On the code grid of a 12-megapixel photo (188 x 250 positions, 192
channels), band by band as the decoder runs (48 code rows), on LiteRT with
the machine's cores, random weights (speed does not depend on them):

* the synthesis (the shipped ``hyperprior.decoder.tflite``), the reference;
* the channel-conditional context (``cae_compress.models.channel_context``):
  three mean networks, a 3x3 convolution of the slices decoded before (48,
  96, 144 channels) to 64 and a 1x1 to 48;
* a checkerboard context (He et al. 2021, as in CompressAI's
  ``Cheng2020``/``ELIC`` family): a 5x5 convolution of the decoded anchors
  (192 channels) to 384 context features, and the 1x1 entropy-parameter
  network that mixes them with the hyperprior's 384 (768 -> 640 -> 512 ->
  384), run once for the non-anchor half.

Prints the median seconds of each (best of the cores' timings across
``--runs``) and its share of the synthesis.  The integer scale networks and
the second pass of entropy decoding come on top of either and are not timed
here.  Needs TensorFlow (to convert the random networks).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def _tflite(model, path: Path) -> Path:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    path.write_bytes(converter.convert())
    return path


def _networks(folder: Path) -> dict:
    import keras
    from keras import layers

    nets = {}
    for i, channels in enumerate((48, 96, 144), start=1):  # the channel context's mean networks (models.channel_context)
        inp = keras.Input((48, 250, channels))
        x = layers.Conv2D(64, 3, padding="same", activation="relu")(inp)
        nets[f"channel mean_context_{i}"] = keras.Model(inp, layers.Conv2D(48, 1)(x))
    inp = keras.Input((48, 250, 192))  # checkerboard: context features of the anchors, then the entropy parameters
    ctx = layers.Conv2D(384, 5, padding="same")(inp)
    hyper = keras.Input((48, 250, 384))
    x = layers.Concatenate()([ctx, hyper])
    for width in (640, 512):
        x = layers.Conv2D(width, 1, activation="relu")(x)
    nets["checkerboard context + entropy parameters"] = keras.Model([inp, hyper], layers.Conv2D(384, 1)(x))
    return {name: _tflite(model, folder / f"{i}.tflite") for i, (name, model) in enumerate(nets.items())}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    import os

    from ai_edge_litert.interpreter import Interpreter

    from cae_compress import zoo

    threads = os.cpu_count() or 1
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        paths = _networks(Path(tmp))
        synthesis = zoo.model_file("hyperprior")[0].with_name("hyperprior.decoder.tflite")
        timings = {}
        bands = 4  # 188 code rows: four bands of 48 (the last one shorter, timed as full)
        for name, path in {"synthesis (shipped hyperprior)": synthesis, **paths}.items():
            interp = Interpreter(model_path=str(path), num_threads=threads)
            details = interp.get_input_details()
            if name.startswith("synthesis"):
                shape = [1, 48 + 4, 250 + 4, 192]  # a band with its context rows; the codec splits it into windows, timed whole here
                interp.resize_tensor_input(details[0]["index"], shape)
            interp.allocate_tensors()
            inputs = [rng.normal(0, 1, d["shape"]).astype(np.float32) for d in interp.get_input_details()]
            runs = []
            for _ in range(args.runs):
                t = time.perf_counter()
                for _ in range(bands):
                    for d, x in zip(interp.get_input_details(), inputs):
                        interp.set_tensor(d["index"], x)
                    interp.invoke()
                runs.append(time.perf_counter() - t)
            timings[name] = statistics.median(runs)
    reference = timings["synthesis (shipped hyperprior)"]
    channel = sum(v for k, v in timings.items() if k.startswith("channel"))
    for name, seconds in timings.items():
        print(f"{name:45s} {seconds:6.3f} s  {100 * seconds / reference:5.1f} % of the synthesis")
    print(f"{'channel context, all three slices':45s} {channel:6.3f} s  {100 * channel / reference:5.1f} % of the synthesis")


if __name__ == "__main__":
    main()
