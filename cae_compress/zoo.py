"""Finding models: shipped ones by name, trained ones by path.

Shipped models live in the ``pretrained/`` folder of the source tree, which
is installed as the package data ``cae_compress/pretrained`` (one
``<name>.keras`` file each, with a ``<name>.json`` manifest).
"""

from __future__ import annotations

from pathlib import Path

from cae_compress.errors import CaeError

_HERE = Path(__file__).resolve().parent
PRETRAINED_DIRS = (_HERE / "pretrained", _HERE.parent / "pretrained")


def shipped_models() -> dict[str, Path]:
    """Name -> ``.keras`` file of every shipped model found."""
    found = {}
    for d in PRETRAINED_DIRS:
        if d.is_dir():
            for f in sorted(d.glob("*.keras")):
                found.setdefault(f.stem, f)
    return found


def default_model_name() -> str | None:
    names = shipped_models()
    return next(iter(names), None)


def _name_for_path(path: Path) -> str:
    path = path.resolve()
    return path.parent.name if path.name == "model.keras" else (path.name if path.is_dir() else path.stem)


def load(model: str | None = None, model_path: str | Path | None = None):
    """A runtime model (see :mod:`cae_compress.runtime`) by shipped name or by path."""
    from cae_compress.models import load_model
    from cae_compress.runtime import KerasModel

    if model_path is not None:
        path = Path(model_path)
        return KerasModel(load_model(path), _name_for_path(path))
    shipped = shipped_models()
    if model is None:
        if not shipped:
            raise CaeError("no shipped models in this install: pass --model-path (train one with 'cae train')")
        model = next(iter(shipped))
    if model not in shipped:
        have = ", ".join(shipped) or "none"
        raise CaeError(f"unknown model '{model}' (shipped: {have}); pass --model-path for a trained one")
    return KerasModel(load_model(shipped[model]), model)
