"""Every architecture, in one place: its name, its Keras builder and its runtime codec (no TensorFlow here).

``--model NAME`` in ``cae train``, :func:`cae_compress.models.build_model`,
loading a ``.keras`` file, loading a model to run (``cae_compress.zoo``) and
``cae models`` all ask this table.  Adding an architecture is its Keras
module (``cae_compress.models``), its codec (``cae_compress.codecs``, which
composes entropy-model parts from ``cae_compress.entropy_models``), one
:func:`register` line and its tests; ``tests/test_registry.py`` registers a
toy one from the test itself and round-trips it through ``cae encode`` /
``cae decode``.

``codec`` names the class that runs the architecture's models (the runtime
protocol, ``cae_compress.codecs.base.Codec``): it says which ``.cae`` version
the files are and which networks run.  ``entropy_coded`` says whether the
architecture is trained on rate and distortion together.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from cae_compress.errors import CaeError


@dataclass(frozen=True)
class Architecture:
    name: str
    builder: str | Callable  # "module:function" or a callable: (input_shape, code_length, filters, l2_penalty, l1_code) -> CAE
    codec: str | type  # "module:Class" or a class: the runtime codec (cae_compress.codecs.base.Codec)
    entropy_coded: bool = False  # trained for rate and distortion (its codes are entropy-coded)
    summary: str = ""

    def build(self, *args, **kwargs):
        return _resolve(self.builder)(*args, **kwargs)

    def codec_class(self) -> type:
        return _resolve(self.codec)


def _resolve(ref):
    if not isinstance(ref, str):
        return ref
    module, attr = ref.split(":")
    return getattr(importlib.import_module(module), attr)


ARCHITECTURES: dict[str, Architecture] = {}


def register(arch: Architecture) -> Architecture:
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


DENSE = "cae_compress.codecs.dense:DenseCodec"
register(Architecture("dense", "cae_compress.models.dense:build_dense", DENSE, summary="conv -> dense code -> dense -> transposed conv"))
register(Architecture("single-layer", "cae_compress.models.dense:build_single_layer", DENSE, summary="the single-layer CAE (its code is larger than its input)"))
register(Architecture("deep", "cae_compress.models.dense:build_deep", DENSE, summary="four convolutions -> dense code, and back"))
register(Architecture("factorized", "cae_compress.models.factorized:build_from_flags", "cae_compress.codecs.factorized:FactorizedCodec", True,
                      summary="rate model: GDN transforms, factorized prior, version 2"))
register(Architecture("hyperprior", "cae_compress.models.hyperprior:build_from_flags", "cae_compress.codecs.hyperprior:HyperpriorCodec", True,
                      summary="mean-scale hyperprior, every rate in one model, version 3"))
register(Architecture("channel-context", "cae_compress.models.channel_context:build_from_flags", "cae_compress.codecs.channel_context:ChannelContextCodec", True,
                      summary="the hyperprior with a channel-conditional context (4 slices), version 3"))
register(Architecture("shallow", "cae_compress.models.shallow:build_from_flags", "cae_compress.codecs.channel_context:ChannelContextCodec", True,
                      summary="the channel-context model with a two-layer synthesis (3.3k MAC/px), version 3"))
