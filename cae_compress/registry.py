"""Every architecture, in one place: its name, its Keras builder, its latent part and its runtime codec (no TensorFlow here).

``--model NAME`` in ``cae train``, :func:`cae_compress.models.build_model`,
loading a ``.keras`` file, loading a model to run (``cae_compress.zoo``),
exporting one (``cae_compress.models.export``) and ``cae models`` all ask
this table.  Adding an architecture is its Keras module
(``cae_compress.models``), its latent part if it brings a new one
(``cae_compress.latent``), one :func:`register` line and its tests (a new
file layout also needs its codec in ``cae_compress.codecs``); see
docs/architecture.md.  ``tests/test_registry.py`` registers a toy one from
the test itself and trains, exports and round-trips it.

An entry names, each as ``"module:attr"`` (imported when first used) or the object itself:

* ``builder``: ``(input_shape, code_length, filters, l2_penalty, l1_code)``
  (``cae train``'s flags) -> an untrained Keras model, plus ``options=`` an
  instance of ``options`` where the entry has one;
* ``codec``: the class that runs the architecture's models (the runtime
  protocol, ``cae_compress.codecs.base.Codec``): it says which ``.cae``
  version the files are and which networks run;
* ``latent``: the latent part (``cae_compress.latent.base.LatentPart``) its
  codec composes and its Keras model asks for the likelihood, or None (the
  dense and factorized models code their codes without one);
* ``options``: a dataclass of the architecture's own build options (widths,
  slices, ...), parsed from ``key=value`` strings by :func:`parse_options`,
  or None.

``entropy_coded`` says whether the architecture is trained on rate and
distortion together.  What a model does at export and evaluation is its
Keras class's (``entropy_file``, ``entropy_params``, ``evaluate_tiles``
in ``cae_compress.models``), never a type check elsewhere.
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from dataclasses import dataclass
from typing import Callable

from cae_compress.errors import CaeError


@dataclass(frozen=True)
class Architecture:
    name: str
    builder: str | Callable  # "module:function" or a callable: (input_shape, code_length, filters, l2_penalty, l1_code[, options=]) -> CAE
    codec: str | type  # "module:Class" or a class: the runtime codec (cae_compress.codecs.base.Codec)
    entropy_coded: bool = False  # trained for rate and distortion (its codes are entropy-coded)
    summary: str = ""
    latent: str | type | None = None  # "module:Class" or a class: the latent part (cae_compress.latent.base.LatentPart), or None
    options: str | type | None = None  # "module:Class" or a dataclass: the builder's own options (parse_options), or None

    def build(self, *args, options=None, **kwargs):
        """An untrained model; ``options``: an instance of :attr:`options` (default: its defaults), for entries that have them."""
        cls = self.options_class()
        if cls is None:
            if options is not None:
                raise CaeError(f"model '{self.name}' takes no architecture options")
            return _resolve(self.builder)(*args, **kwargs)
        return _resolve(self.builder)(*args, options=options if options is not None else cls(), **kwargs)

    def codec_class(self) -> type:
        return _resolve(self.codec)

    def latent_class(self) -> type | None:
        return None if self.latent is None else _resolve(self.latent)

    def options_class(self) -> type | None:
        return None if self.options is None else _resolve(self.options)

    def networks(self, has: Callable[[str], bool]) -> tuple[str, ...]:
        """The networks a model of this architecture runs: its codec's, its latent part's, and the codec's optional ones that ``has(name)``."""
        codec, latent = self.codec_class(), self.latent_class()
        names = dict.fromkeys(codec.networks + (latent.networks if latent is not None else ()))
        return tuple(names) + tuple(n for n in codec.optional_networks if n not in names and has(n))

    def codec_options(self) -> dict:
        """What the codec's constructor takes from the entry besides the networks and the export: its latent part, where it has one."""
        latent = self.latent_class()
        return {} if latent is None else {"latent": latent}


def _resolve(ref):
    if not isinstance(ref, str):
        return ref
    module, attr = ref.split(":")
    return getattr(importlib.import_module(module), attr)


def parse_options(name: str, pairs) -> object | None:
    """The options of architecture ``name`` from ``key=value`` strings (``cae train --arch-option``), or None if it has none and none are given.

    A tuple field takes comma-separated values (``synthesis_widths=128,64,32``);
    an unknown key, a bad value or options for an architecture without any
    is a :class:`CaeError` naming the keys there are.
    """
    pairs = list(pairs or ())
    cls = get(name).options_class()
    if cls is None:
        if pairs:
            raise CaeError(f"model '{name}' takes no architecture options (got {', '.join(pairs)})")
        return None
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in fields:
            raise CaeError(f"architecture option '{pair}': expected key=value, key one of: {', '.join(fields)} (model '{name}')")
        try:
            values[key] = _parse_value(hints[key], text.strip())
        except ValueError:
            raise CaeError(f"architecture option '{pair}': not a valid {_type_name(hints[key])}") from None
    options = cls(**values)
    check = getattr(options, "check", None)
    if check is not None:
        check()
    return options


def options_dict(options) -> dict:
    """An options object as plain JSON values (for ``run.json``): tuples as lists."""
    return {} if options is None else {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(options).items()}


def _parse_value(hint, text: str):
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if args and typing.get_origin(hint) is not tuple:  # Optional[...] / X | None
        if text.lower() in ("", "none"):
            return None
        return _parse_value(args[0], text)
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        return tuple(_parse_value(item, t.strip()) for t in text.split(",") if t.strip())
    if hint is bool:
        if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(text)
        return text.lower() in ("true", "1", "yes")
    return hint(text)


def _type_name(hint) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


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
HYPERPRIOR = "cae_compress.codecs.hyperprior:HyperpriorCodec"
CHANNEL_CONTEXT = "cae_compress.latent.channel_context:ChannelContext"
register(Architecture("dense", "cae_compress.models.dense:build_dense", DENSE, summary="conv -> dense code -> dense -> transposed conv"))
register(Architecture("single-layer", "cae_compress.models.dense:build_single_layer", DENSE, summary="the single-layer CAE (its code is larger than its input)"))
register(Architecture("deep", "cae_compress.models.dense:build_deep", DENSE, summary="four convolutions -> dense code, and back"))
register(Architecture("factorized", "cae_compress.models.factorized:build_from_flags", "cae_compress.codecs.factorized:FactorizedCodec", True,
                      summary="rate model: GDN transforms, factorized prior, version 2"))
register(Architecture("hyperprior", "cae_compress.models.hyperprior:build_from_flags", HYPERPRIOR, True,
                      summary="mean-scale hyperprior, every rate in one model, version 3", latent="cae_compress.latent.mean_scale:MeanScale",
                      options="cae_compress.models.hyperprior:HyperpriorOptions"))
register(Architecture("channel-context", "cae_compress.models.channel_context:build_from_flags", HYPERPRIOR, True,
                      summary="the hyperprior with a channel-conditional context (4 slices), version 3", latent=CHANNEL_CONTEXT,
                      options="cae_compress.models.hyperprior:HyperpriorOptions"))
register(Architecture("shallow", "cae_compress.models.shallow:build_from_flags", HYPERPRIOR, True,
                      summary="the channel-context model with a two-layer synthesis (3.3k MAC/px), version 3", latent=CHANNEL_CONTEXT,
                      options="cae_compress.models.shallow:ShallowOptions"))
