"""The files beside a model's ``NAME.keras``: one place knows their names, and ``NAME.lite.json`` is read once.

* ``NAME.<network>.tflite``: each network the model's codec runs, converted
  to LiteRT (``encoder``, ``decoder``; the hyperprior adds
  ``hyper_encoder`` and ``hyper_mean``); a network stored in parts (an int8
  head and a float tail) lists its files under ``parts`` in ``lite.json``;
* ``NAME.lite.json``: what the codec needs without TensorFlow: architecture,
  tile and code shapes, value range, the Keras model's fingerprint, and the
  entropy model (a factorized model's integer tables inline, or the name of
  the ``.npz`` beside it: ``NAME.hyper.npz``).

Written by ``cae_compress.models.export`` (TensorFlow); read by
``cae_compress.zoo`` to load a model on LiteRT.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cae_compress.errors import CaeError


class ModelFiles:
    """The files of the model whose weights are ``keras_path`` (which need not exist: a model shipped as LiteRT only)."""

    def __init__(self, keras_path: str | Path):
        self.keras = Path(keras_path)
        self._meta = None

    def _beside(self, suffix: str) -> Path:
        return self.keras.with_name(self.keras.stem + suffix)

    @property
    def lite_json(self) -> Path:
        return self._beside(".lite.json")

    def tflite(self, network: str) -> Path:
        """``NAME.<network>.tflite``."""
        return self._beside(f".{network}.tflite")

    def tail(self, network: str) -> Path:
        """The float tail of a network whose head runs on int8: ``NAME.<network>.tail.tflite``."""
        return self._beside(f".{network}.tail.tflite")

    def npz(self, kind: str) -> Path:
        """An entropy model's arrays stored beside the weights: ``NAME.<kind>.npz``."""
        return self._beside(f".{kind}.npz")

    def has_lite(self) -> bool:
        """Whether the LiteRT description and the two networks every model has are here."""
        return all(p.is_file() for p in (self.lite_json, self.tflite("encoder"), self.tflite("decoder")))

    def meta(self) -> dict:
        """``NAME.lite.json``, read once."""
        if self._meta is None:
            try:
                self._meta = json.loads(self.lite_json.read_text())
            except (OSError, ValueError) as exc:
                raise CaeError(f"{self.lite_json}: unreadable LiteRT model description ({exc})") from None
        return self._meta

    def network_files(self, network: str) -> list[Path]:
        """The LiteRT file(s) of ``network``, run one after the other (several when ``lite.json`` lists parts)."""
        parts = self.meta().get("parts", {}).get(network)
        return [self.keras.with_name(p) for p in parts] if parts else [self.tflite(network)]

    def entropy(self) -> dict | None:
        """The exported entropy model: tables inline in ``lite.json``, or the arrays of the ``.npz`` file it names."""
        entry = self.meta().get("entropy")
        if not isinstance(entry, str):
            return entry
        path = self.npz(entry.removesuffix(".npz"))
        try:
            with np.load(path, allow_pickle=False) as f:
                return {k: f[k] for k in f.files}
        except (OSError, ValueError) as exc:
            raise CaeError(f"{path}: unreadable entropy model ({exc}); run 'cae export --model-path {self.keras}'") from None

    def exported(self) -> list[Path]:
        """The export's files that exist: the LiteRT description, every ``.tflite`` (parts too) and entropy ``.npz``."""
        stem = self.keras.stem
        found = [self.lite_json, *self.keras.parent.glob(f"{stem}.*.tflite"), *self.keras.parent.glob(f"{stem}.*.npz")]
        return sorted(p for p in found if p.is_file())
