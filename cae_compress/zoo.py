"""Finding models: shipped ones by name, trained ones by path.

Shipped models live in the package data folder ``cae_compress/pretrained/``
(one ``<name>.keras`` file each, with a ``<name>.json`` manifest).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from cae_compress import registry
from cae_compress.errors import CaeError
from cae_compress.io.files import atomic_write
from cae_compress.requires import require_tensorflow
from cae_compress.runtime import litert
from cae_compress.runtime.files import ModelFiles

_HERE = Path(__file__).resolve().parent
PRETRAINED_DIR = _HERE / "pretrained"


def shipped_models() -> dict[str, Path]:
    """Name -> ``.keras`` path of every shipped model found.

    A model shipped with its LiteRT files only (``NAME.lite.json`` and its
    ``.tflite`` files, no ``NAME.keras``: the older rate models, to keep the
    package small) is listed too; its ``.keras`` path does not exist, and it
    runs on LiteRT alone.
    """
    d = PRETRAINED_DIR
    if not d.is_dir():
        return {}
    stems = {f.stem for f in d.glob("*.keras")} | {f.name[: -len(".lite.json")] for f in d.glob("*.lite.json")}
    return {stem: d / f"{stem}.keras" for stem in sorted(stems)}


# The default for `encode` when shipped: the best trade-off measured (see the README).
PREFERRED_DEFAULTS = ("channel-context", "hyperprior", "rate-q4", "rate-q3", "rate-q5", "rate-q2", "rate-q1", "cifar10-128", "cifar10-64", "cifar10-256", "cifar10-32")
RATE_PREFIX = "rate-q"  # shipped rate models are rate-q1 (smallest files) .. rate-qN (best quality)


def manifest(name: str) -> dict:
    """The manifest (``<name>.json`` beside the weights) of a shipped model; empty if it has none."""
    path = shipped_models()[name].with_suffix(".json")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def default_model_name() -> str | None:
    """The shipped model ``encode`` uses without ``--model``: the first of :data:`PREFERRED_DEFAULTS` shipped.

    Only colour (CIFAR-10) models qualify: a grayscale MNIST model would turn
    every photo gray.
    """
    names = shipped_models()
    return next((n for n in PREFERRED_DEFAULTS if n in names), None)


def family(dataset: str = "cifar10") -> list[str]:
    """The shipped dense-code models of ``dataset`` (``cifar10-32``, ``cifar10-64``, ...), shortest code first."""
    names = [n for n in shipped_models() if n.startswith(dataset + "-") and n[len(dataset) + 1 :].isdigit()]
    return sorted(names, key=lambda n: int(n[len(dataset) + 1 :]))


def family_model(dataset: str, code_length: int) -> str:
    """The shipped ``<dataset>-<code_length>`` model, or one clear error naming the code lengths that ship."""
    name = f"{dataset}-{code_length}"
    if name not in shipped_models():
        have = ", ".join(n[len(dataset) + 1 :] for n in family(dataset)) or "none"
        raise CaeError(f"--code-length {code_length}: no shipped model {name} (code lengths shipped: {have})")
    return name


def rate_models() -> list[str]:
    """Shipped rate models, smallest files first: ``rate-q1``, ``rate-q2``, ..."""
    names = [n for n in shipped_models() if n.startswith(RATE_PREFIX) and n[len(RATE_PREFIX) :].isdigit()]
    return sorted(names, key=lambda n: int(n[len(RATE_PREFIX) :]))


def _name_for_path(path: Path) -> str:
    """A run's model is named after its run folder, any other file after its stem."""
    path = path.resolve()
    return path.parent.name if path.name == "model.keras" else path.stem


BACKENDS = ("auto", "litert", "tensorflow")


def _load_path(path: Path, name: str, backend: str):
    """The codec of the model whose weights are ``path``: on LiteRT where its files exist (``auto``), else on TensorFlow.

    The one way a model is loaded: its files (``runtime.files``) name the
    architecture, the registry names its codec class, and the codec gets its
    networks from the backend (``runtime.litert`` or ``runtime.keras_nets``)
    with the description and entropy tables of the export.
    """
    if backend not in BACKENDS:
        raise CaeError(f"unknown backend '{backend}' (choose from: {', '.join(BACKENDS)})")
    files = ModelFiles(path)
    identity = {"name": name, "keras_path": path}
    if backend == "litert" or (backend == "auto" and files.has_lite()):
        if not files.has_lite():
            raise CaeError(f"{path}: no LiteRT files beside it; run 'cae export --model-path {path}' or use --backend tensorflow")
        meta = files.meta()
        arch = registry.get(meta.get("arch", ""))
        names = arch.networks(lambda n: files.tflite(n).is_file())
        return arch.codec_class()(litert.networks(files, names), meta, files.entropy(), backend="litert", **arch.codec_options(), **identity)
    if not path.is_file():
        raise CaeError(f"{name}: shipped with its LiteRT files only (no {path.name}); --backend tensorflow, export and inspect are not available for it")
    require_tensorflow("--backend tensorflow" if backend == "tensorflow" else f"{path}: a model without LiteRT files")
    from cae_compress.models import load_model  # TensorFlow
    from cae_compress.models.export import describe
    from cae_compress.runtime import keras_nets

    cae = load_model(path)
    arch = registry.get(cae.arch)
    meta, entropy = describe(cae, files)
    names = arch.networks(lambda n: getattr(cae, n, None) is not None)
    model = arch.codec_class()(keras_nets.networks(cae, names), meta, entropy, backend="tensorflow", **arch.codec_options(), **identity)
    model.cae = cae  # the Keras model itself, for export, inspection and --effort
    return model


def model_file(model: str | None = None, model_path: str | Path | None = None) -> tuple[Path, str]:
    """The ``.keras`` file and name of a model given by path (a file or a run folder) or by shipped name (default: the default)."""
    if model_path is not None:
        path = Path(model_path)
        if path.is_dir():
            path = path / "model.keras"
        if not path.is_file():
            raise CaeError(f"{model_path}: no such model file")
        return path, _name_for_path(path)
    shipped = shipped_models()
    if model is None:
        model = default_model_name()
        if model is None:
            have = f"shipped: {', '.join(shipped)}; pass --model" if shipped else "pass --model-path (train one with 'cae train')"
            raise CaeError(f"no default model in this install ({have})")
    if model not in shipped:
        raise UnknownModel(model, list(shipped))
    return shipped[model], model


class UnknownModel(CaeError):
    """A model name that is not shipped; ``model`` and ``shipped`` let the Python API say it in its own terms."""

    def __init__(self, model: str, shipped: list[str]):
        super().__init__(f"unknown model '{model}' (shipped: {', '.join(shipped) or 'none'}); pass --model-path for a trained one")
        self.model, self.shipped = model, shipped


def load(model: str | None = None, model_path: str | Path | None = None, backend: str = "auto"):
    """A model to run (a codec, see :mod:`cae_compress.codecs.base`) by shipped name or by path.

    ``backend``: ``auto`` (LiteRT when the model has its ``.tflite`` files, else
    TensorFlow), ``litert`` or ``tensorflow``.
    """
    return _load_path(*model_file(model, model_path), backend)


def publish(run_dir: str | Path, name: str, dest: str | Path = PRETRAINED_DIR) -> Path:
    """Copy a finished run's model into ``dest`` as ``<name>.keras`` with its manifest ``<name>.json``.

    The manifest records what a user needs to trust and reproduce the model:
    architecture, code length, data, epochs, the exact ``cae train`` command,
    validation and test results, and the sha256 of the weights file.
    """
    run = Path(run_dir)
    try:
        meta = json.loads((run / "run.json").read_text())
        val = json.loads((run / "validation_results.json").read_text())
        test = json.loads((run / "test_results.json").read_text())
    except (OSError, ValueError) as exc:
        raise CaeError(f"{run}: not a finished run folder ({exc})") from None
    if meta.get("status") != "finished":
        raise CaeError(f"{run}: the run has not finished (status: {meta.get('status')})")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    weights = dest / f"{name}.keras"
    shutil.copyfile(run / "model.keras", weights)
    source = ModelFiles(run / "model.keras")
    for src in source.exported():
        shutil.copyfile(src, dest / (name + src.name[len(source.keras.stem):]))
    config = meta["config"]
    record = {
        "name": name,
        "architecture": config["model"],
        "code_length": meta["model"]["code_length"],
        "tile_shape": meta["dataset"]["tile_shape"],
        "parameters": meta["model"]["parameters"],
        "dataset": config["dataset"],
        "epochs": config["epochs"],
        "command": meta.get("command"),
        "config": config,
        "validation": {k: val[k] for k in ("mse", "psnr", "mse_half_pm1", "bpp") if k in val},
        "test": {k: test[k] for k in ("mse", "psnr", "mse_half_pm1", "bpp") if k in test},
        **({"lmbda": config["lmbda"]} if "bpp" in test else {}),
        "versions": meta.get("versions"),
        "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "sha256_lite": {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in ModelFiles(weights).exported()},
    }
    if config.get("init_from"):  # a fine-tuned model: how its starting point was trained, too
        try:
            base = json.loads((Path(config["init_from"]).parent / "run.json").read_text())
            record["initialised_from"] = {"command": base.get("command"), "config": base.get("config")}
        except (OSError, ValueError):
            record["initialised_from"] = {"path": config["init_from"]}
    atomic_write(dest / f"{name}.json", (json.dumps(record, indent=2) + "\n").encode())
    return weights
