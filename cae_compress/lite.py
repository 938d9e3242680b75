"""The light inference path: the encoder and decoder as LiteRT (``.tflite``) models.

Importing TensorFlow costs seconds; ``ai-edge-litert`` loads in a fraction of
that, so ``encode``, ``decode`` and ``bench`` use it whenever a model has its
LiteRT files, and TensorFlow only for training (or with ``--backend
tensorflow``).  A model saved as ``NAME.keras`` gets, beside it:

* ``NAME.encoder.tflite`` and ``NAME.decoder.tflite``: float32 graphs with a
  dynamic batch dimension, converted with ``tf.lite.TFLiteConverter``;
* ``NAME.lite.json``: what the codec needs without TensorFlow: architecture,
  tile and code shapes, value range, and the Keras model's fingerprint, so a
  file made on either path names the same model.

This module (the runtime) never imports TensorFlow or Keras; the export,
which does, is ``cae_compress.lite_export``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from cae_compress._quiet import quiet_stderr
from cae_compress.coder import Tables
from cae_compress.errors import CaeError
from cae_compress.pixels import from_model_range, to_model_range
from cae_compress.runtime import header_name, layout_of


def lite_paths(keras_path: str | Path) -> tuple[Path, Path, Path]:
    """(encoder .tflite, decoder .tflite, .lite.json) beside a ``.keras`` file."""
    p = Path(keras_path)
    stem = p.with_suffix("")
    return Path(f"{stem}.encoder.tflite"), Path(f"{stem}.decoder.tflite"), Path(f"{stem}.lite.json")


def tail_path(path: Path) -> Path:
    """The float tail of a network whose head ``path`` runs on int8 (``NAME.encoder.tflite`` -> ``NAME.encoder.tail.tflite``)."""
    return path.with_name(path.name.removesuffix(".tflite") + ".tail.tflite")


def has_lite(keras_path: str | Path) -> bool:
    return all(p.is_file() for p in lite_paths(keras_path))


def read_tables(keras_path: str | Path) -> Tables:
    """The integer entropy tables exported beside a rate model's ``.keras`` file."""
    meta_path = lite_paths(keras_path)[2]
    try:
        return Tables(json.loads(meta_path.read_text())["entropy"])
    except (OSError, ValueError, KeyError) as exc:
        raise CaeError(f"{meta_path}: a rate model needs the entropy tables of its export ({exc}); run 'cae export --model-path {keras_path}'") from None


class _Runner:
    """One LiteRT interpreter, resized to each batch size it meets."""

    def __init__(self, path: Path, threads: int):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:  # pragma: no cover - the package is a dependency
            raise CaeError("the LiteRT runtime (ai-edge-litert) is not installed; use --backend tensorflow") from None
        try:
            with quiet_stderr():  # "Created TensorFlow Lite XNNPACK delegate" and the like
                self.interp = Interpreter(model_path=str(path), num_threads=threads)
        except Exception as exc:
            raise CaeError(f"{path}: not a LiteRT model ({exc})") from None
        self.inp = self.interp.get_input_details()[0]["index"]
        self.out = self.interp.get_output_details()[0]["index"]
        self.batch = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.batch != x.shape:
            self.interp.resize_tensor_input(self.inp, list(x.shape))
            with quiet_stderr():
                self.interp.allocate_tensors()
            self.batch = x.shape
        self.interp.set_tensor(self.inp, np.ascontiguousarray(x, np.float32))
        self.interp.invoke()
        return self.interp.get_tensor(self.out).copy()


class LiteModel:
    """Inference through LiteRT; the same interface as :class:`cae_compress.runtime.KerasModel`."""

    backend = "litert"

    def __init__(self, keras_path: str | Path, name: str, threads: int | None = None):
        enc_path, dec_path, meta_path = lite_paths(keras_path)
        try:
            meta = json.loads(meta_path.read_text())
            self.fingerprint = bytes.fromhex(meta["fingerprint"])
            self.tile_shape = tuple(meta["tile_shape"])
            self.code_shape = tuple(meta["code_shape"])
            self.value_range = tuple(meta["value_range"])
            self.arch = meta["arch"]
            self.tables = Tables(meta["entropy"]) if "entropy" in meta else None
        except (OSError, ValueError, KeyError, CaeError) as exc:
            raise CaeError(f"{meta_path}: unreadable LiteRT model description ({exc})") from None
        self.layout = layout_of(self.arch)
        self.name = header_name(name)
        self.code_length = int(np.prod(self.code_shape))
        threads = threads or os.cpu_count() or 1
        self._encoder = _Runner(enc_path, threads)
        self._decoder = _Runner(dec_path, threads)

    def encode_tiles(self, tiles: np.ndarray) -> np.ndarray:
        return self._encoder(to_model_range(tiles, self.value_range)).reshape(len(tiles), -1)

    def decode_tiles(self, codes: np.ndarray) -> np.ndarray:
        x = np.asarray(codes, np.float32)
        if x.ndim != 4:  # a rate model gets its codes as a grid already
            x = x.reshape(len(codes), *self.code_shape)
        return from_model_range(self._decoder(x), self.value_range)
