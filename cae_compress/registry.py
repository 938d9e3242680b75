"""Every architecture, in one place: its name, where it is built, how its files code (no TensorFlow here).

``--model NAME`` in ``cae train``, :func:`cae_compress.models.build_model`,
loading a ``.keras`` file, loading a runtime model (``cae_compress.zoo``)
and ``cae models`` all ask this table.  Adding an architecture is its module
plus one :func:`register` call (``tests/test_registry.py`` registers a toy
one from the test itself and round-trips it through ``cae encode``/``cae
decode``).

``coding`` says how files of the architecture are written, and is the one
answer to "is this an entropy-coded model?":

* ``float``: a fixed-length float code per tile, ``.cae`` version 1 (dense-code models);
* ``factorized``: integer codes range-coded with per-channel tables, version 2;
* ``streams``: the model protocol, ``compress(pixels, quality) -> (streams,
  record)`` and ``decompress(streams, record, height, width)``, version 3;
  ``runtime`` then loads the model that answers it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from cae_compress.errors import CaeError

CODINGS = ("float", "factorized", "streams")


@dataclass(frozen=True)
class Architecture:
    name: str
    builder: str | Callable  # "module:function" or a callable: (input_shape, code_length, filters, l2_penalty, l1_code) -> CAE
    coding: str = "float"
    runtime: str | Callable | None = None  # "streams" models: (keras_path, name, backend) -> a model with compress/decompress
    summary: str = ""

    @property
    def entropy_coded(self) -> bool:
        return self.coding != "float"

    def build(self, *args, **kwargs):
        return _resolve(self.builder)(*args, **kwargs)

    def load_runtime(self, path, name: str, backend: str):
        return _resolve(self.runtime)(path, name, backend)


def _resolve(ref):
    if callable(ref):
        return ref
    module, attr = ref.split(":")
    return getattr(importlib.import_module(module), attr)


ARCHITECTURES: dict[str, Architecture] = {}


def register(arch: Architecture) -> Architecture:
    if arch.coding not in CODINGS:
        raise ValueError(f"unknown coding '{arch.coding}'")
    if arch.coding == "streams" and arch.runtime is None:
        raise ValueError("a 'streams' architecture needs a runtime loader")
    ARCHITECTURES[arch.name] = arch
    return arch


def get(name: str) -> Architecture:
    if name not in ARCHITECTURES:
        raise CaeError(f"unknown model '{name}' (choose from: {', '.join(ARCHITECTURES)})")
    return ARCHITECTURES[name]


def entropy_coded(name: str) -> bool:
    """Whether models of architecture ``name`` entropy-code their codes (trained on rate and distortion)."""
    return get(name).entropy_coded


def modules() -> list[str]:
    """The modules that define the registered architectures (importing them registers their Keras classes)."""
    refs = [a.builder for a in ARCHITECTURES.values() if isinstance(a.builder, str)]
    return sorted({r.split(":")[0] for r in refs})


register(Architecture("dense", "cae_compress.models.dense:build_dense", summary="conv -> dense code -> dense -> transposed conv"))
register(Architecture("single-layer", "cae_compress.models.dense:build_single_layer", summary="the single-layer CAE (its code is larger than its input)"))
register(Architecture("deep", "cae_compress.models.dense:build_deep", summary="four convolutions -> dense code, and back"))
register(Architecture("factorized", "cae_compress.models.factorized:build_from_flags", "factorized", summary="rate model: GDN transforms, factorized prior, version 2"))
register(Architecture("hyperprior", "cae_compress.models.hyperprior:build_from_flags", "streams", "cae_compress.hypercodec:load_runtime",
                      summary="mean-scale hyperprior, every rate in one model, version 3"))
