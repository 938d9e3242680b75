"""Training runs: one folder per run, everything done through Keras callbacks.

A run folder (``logs/<model>/<run-name>/`` by default) holds:

* ``run.json``: the configuration, the command, versions and the run's status;
* ``tensorboard/``: train and validation loss, MSE and PSNR per epoch, and
  input-vs-reconstruction images of validation tiles each epoch, and the
  learned filters of the encoding convolution at the end;
* ``history.csv``: the same scalars as a table;
* ``backup/``: Keras ``BackupAndRestore`` state while the run is unfinished,
  so ``--resume`` continues a killed run at the epoch where it stopped;
* ``best-checkpoint.keras`` while training (with optimizer state), then
  ``model.keras``: the best model by validation loss without optimizer state,
  what ``--model-path`` loads, with ``model.encoder.tflite``,
  ``model.decoder.tflite`` and ``model.lite.json`` for the LiteRT path;
* ``validation_results.json`` and ``test_results.json``: MSE (0-255 scale),
  PSNR (mean of per-image PSNR, dB) of the uint8 reconstructions, the training
  loss, and the published single-layer metric (MSE/2 on the [-1, 1] scale).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import json
import math
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cae_compress import __version__, registry
from cae_compress._quiet import quiet_stderr
from cae_compress.errors import FAILURE, CaeError
from cae_compress.io.files import atomic_write, make_folder
from cae_compress.io.pixels import to_model_range
from cae_compress.training.data import eval_pipeline, load_dataset, train_pipeline
from cae_compress.training.distribute import STRATEGIES, is_chief, make_strategy

# TensorFlow, Keras and the Keras models are imported inside the functions that train:
# `cae train` checks its flags (and `cae train --help` runs) without loading them.

OPTIMIZERS = ("adam", "rmsprop", "sgd")
DEVICES = ("auto", "cpu", "gpu")
LOSSES = ("mse", "psnr")  # see cae_compress.models.reconstruction_loss


@dataclass
class TrainConfig:
    """Everything that defines a training run; saved as ``run.json``."""

    model: str = "dense"
    dataset: str = "cifar10"
    code_length: int = 128
    filters: int | None = None
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    lr_decay: float = 1.0
    l2_penalty: float = 0.0
    l1_code: float = 0.0
    grayscale: bool = False
    tile_size: int = 32
    val_split: float = 0.1
    seed: int = 0
    device: str = "auto"
    strategy: str = "default"
    cache: bool = False
    lmbda: float = 100.0
    scales: tuple[int, ...] = (1,)
    flip: bool = False
    cosine: bool = False
    init_from: str | None = None
    loss: str = "mse"
    arch_options: tuple[str, ...] = ()  # the architecture's own options as key=value strings (registry.parse_options)

    @property
    def rate(self) -> bool:
        """Whether this trains an entropy-coded model (``factorized``, ``hyperprior``): distortion + lambda * rate."""

        return registry.entropy_coded(self.model)

    def validate(self) -> None:

        registry.get(self.model)
        self.arch_options = tuple(self.arch_options)  # a list once read back from run.json
        registry.parse_options(self.model, self.arch_options)
        self.scales = tuple(int(f) for f in self.scales)  # a list once read back from run.json
        if not self.scales or min(self.scales) < 1:
            raise CaeError(f"--scales takes positive integers, got {','.join(map(str, self.scales)) or 'nothing'}")
        if not self.lmbda > 0:
            raise CaeError(f"--lmbda must be positive, got {self.lmbda}")
        if self.loss not in LOSSES:
            raise CaeError(f"unknown loss '{self.loss}' (choose from: {', '.join(LOSSES)})")
        if self.loss != "mse" and self.rate:
            raise CaeError(f"--loss {self.loss} is for fixed-length code models; '{self.model}' trains on distortion + lambda * rate")
        if self.init_from is not None and not Path(self.init_from).exists():
            raise CaeError(f"--init-from {self.init_from}: no such model file")
        if self.code_length <= 0:
            raise CaeError(f"--code-length must be positive, got {self.code_length}")
        if self.epochs <= 0:
            raise CaeError(f"--epochs must be positive, got {self.epochs}")
        if self.batch_size <= 0:
            raise CaeError(f"--batch-size must be positive, got {self.batch_size}")
        if self.optimizer not in OPTIMIZERS:
            raise CaeError(f"unknown optimizer '{self.optimizer}' (choose from: {', '.join(OPTIMIZERS)})")
        if not self.learning_rate > 0:
            raise CaeError(f"--learning-rate must be positive, got {self.learning_rate}")
        if not 0 < self.lr_decay <= 1:
            raise CaeError(f"--lr-decay must be in (0, 1] (1 = no decay), got {self.lr_decay}")

        if self.strategy not in STRATEGIES:
            raise CaeError(f"unknown strategy '{self.strategy}' (choose from: {', '.join(STRATEGIES)})")
        if self.device not in DEVICES:
            raise CaeError(f"unknown device '{self.device}' (choose from: {', '.join(DEVICES)})")
        if self.filters is not None and self.filters <= 0:
            raise CaeError(f"--filters must be positive, got {self.filters}")


@dataclass
class TrainResult:
    run_dir: Path
    history: dict
    validation: dict
    test: dict


# ------------------------------------------------------------------------ helpers
def default_run_dir(config: TrainConfig, root: str | Path = "logs") -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    data = Path(config.dataset).stem if config.dataset not in ("cifar10", "mnist") else config.dataset
    length = f"-l{config.lmbda:g}" if config.rate else f"-c{config.code_length}" if config.model != "single-layer" else ""
    return Path(root) / config.model / f"{data}{length}-{stamp}"


def select_device(device: str) -> None:
    """Hide GPUs for ``cpu``; insist on one for ``gpu``; ``auto`` uses what is there."""
    import tensorflow as tf

    with quiet_stderr():  # the CUDA probe prints errors on machines without a GPU
        gpus = tf.config.list_physical_devices("GPU")
    if device == "gpu" and not gpus:
        raise CaeError("--device gpu: TensorFlow sees no GPU on this machine")
    if device == "cpu" and gpus:
        try:
            tf.config.set_visible_devices([], "GPU")
        except RuntimeError:  # devices already initialised in this process
            pass


def _optimizer(config: TrainConfig, steps_per_epoch: int):
    import keras

    lr = config.learning_rate
    if config.cosine:
        lr = keras.optimizers.schedules.CosineDecay(lr, decay_steps=steps_per_epoch * config.epochs, alpha=0.05)
    elif config.lr_decay < 1:
        lr = keras.optimizers.schedules.ExponentialDecay(lr, decay_steps=steps_per_epoch, decay_rate=config.lr_decay)
    # rate models: the global gradient norm is clipped at 1 (as CompressAI trains them); without it a
    # factorized model trained here at lr 1e-3 blew up after five epochs (PSNR 25 dB -> 5 dB)
    clip = {"global_clipnorm": 1.0} if config.rate else {}
    if config.optimizer == "adam":
        return keras.optimizers.Adam(lr, **clip)
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(lr, **clip)
    return keras.optimizers.SGD(lr, momentum=0.9, **clip)


def _reconstruction_callback(model, x_val_scaled, log_dir: Path, every: int = 1):
    """Write input | reconstruction pairs of a few validation tiles to TensorBoard each epoch, and the filters at the end."""
    import keras
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(log_dir))
    lo, hi = model.value_range
    sample = x_val_scaled[:8]

    class Reconstructions(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            from cae_compress.evaluation.visualize import filter_grid

            with writer.as_default():
                tf.summary.image("filters of the encoding convolution", filter_grid(model)[None], step=0)
            writer.flush()

        def on_epoch_end(self, epoch, logs=None):
            if epoch % every:
                return
            recon = np.clip(model(sample, training=False).numpy(), lo, hi)
            pairs = np.concatenate([sample, recon], axis=2)
            with writer.as_default():
                tf.summary.image("input | reconstruction", (pairs - lo) / (hi - lo), step=epoch, max_outputs=len(pairs))
            writer.flush()

    return Reconstructions()


class NaNLoss(Exception):
    pass


def _nan_callback():
    import keras

    class StopOnNaN(keras.callbacks.Callback):
        """Like ``TerminateOnNaN``, but raises so the run ends with a clear message."""

        def on_train_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                raise NaNLoss(f"loss became {float(loss)} at batch {batch}")

    return StopOnNaN()


def _best_val_loss(history_csv: Path) -> float | None:
    if not history_csv.is_file():
        return None
    with history_csv.open() as f:
        values = [float(r["val_loss"]) for r in csv.DictReader(f) if r.get("val_loss")]
    return min(values) if values else None


def evaluate(model, tiles: np.ndarray, batch_size: int = 256) -> dict:
    """Loss and pixel metrics of ``model`` on uint8 ``tiles`` (reconstructions rounded to uint8): the model's own ``evaluate_tiles``.

    For a rate model the codes are rounded as in the codec, and ``bpp`` is
    their information content under the learned prior, in bits per pixel
    (the coder's output is within 0.1% of it, plus the file header).
    """
    return model.evaluate_tiles(tiles, batch_size)


def _write_json(path: Path, data: dict) -> None:
    atomic_write(path, (json.dumps(data, indent=2) + "\n").encode())


# --------------------------------------------------------------------------- train
def train(
    config: TrainConfig,
    run_dir: str | Path | None = None,
    resume: bool = False,
    quiet: bool = False,
    command: str | None = None,
    callbacks: list | None = None,
) -> TrainResult:
    """Train ``config`` into ``run_dir``; with ``resume``, continue the run saved there.

    ``callbacks`` are extra Keras callbacks, run after the project's own.

    On resume the configuration is read back from ``run_dir/run.json``, except
    ``strategy`` and ``device``, which come from ``config``: a run can resume
    on another number of devices or workers.  Training goes on from the last
    finished epoch.
    """
    if resume:
        if run_dir is None:
            raise CaeError("--resume needs --run-dir: the folder of the run to continue")
        run_dir = Path(run_dir)
        meta_path = run_dir / "run.json"
        if not meta_path.is_file():
            raise CaeError(f"{run_dir}: not a run folder (no run.json), nothing to resume")
        meta = json.loads(meta_path.read_text())
        # what is trained comes from the run; where it runs (strategy, device) from this call
        config = TrainConfig(**{**meta["config"], "strategy": config.strategy, "device": config.device})
    else:
        config.validate()

        run_dir = Path(run_dir) if run_dir is not None else default_run_dir(config)
        if is_chief(config.strategy) and run_dir.exists() and any(run_dir.iterdir()):
            raise CaeError(f"{run_dir}: run folder already exists; use --resume to continue it or another --run-dir")

    # Everything that can fail on bad input happens before the run folder is made.

    dataset = load_dataset(config.dataset, grayscale=config.grayscale, val_split=config.val_split, tile_size=config.tile_size)

    from cae_compress._tf import tf  # noqa: I001  (first: imports TensorFlow quietly)
    import keras

    from cae_compress.models import build_model, pixel_metrics, reconstruction_loss

    select_device(config.device)
    placement = make_strategy(config.strategy)
    keras.utils.set_random_seed(config.seed)
    with placement.strategy.scope():
        options = registry.parse_options(config.model, config.arch_options)
        model = build_model(config.model, dataset.tile_shape, config.code_length, config.filters, config.l2_penalty, config.l1_code, options=options)
        if config.rate and hasattr(model, "lmbda"):  # the hyperprior trains every rate anchor at once
            model.lmbda = config.lmbda
        if config.init_from and not resume:
            from cae_compress.models import load_model

            try:
                model.set_weights(load_model(config.init_from).get_weights())
            except CaeError:  # a ValueError too: a missing or unreadable file says so itself
                raise
            except ValueError as exc:
                raise CaeError(f"--init-from {config.init_from}: not the same architecture ({exc})") from None

    created = not run_dir.exists()
    make_folder(run_dir)
    work_dir = placement.work_dir(run_dir)  # the run folder itself, except for non-chief workers
    work_dir.mkdir(parents=True, exist_ok=True)
    placement.prepare_backup(run_dir)
    if not resume:
        meta = {
            "config": dataclasses.asdict(config),
            "command": command,
            "created": datetime.datetime.now().isoformat(timespec="seconds"),
            "versions": {"cae_compress": __version__, "tensorflow": tf.__version__, "keras": keras.__version__},
            "dataset": {"name": dataset.name, "tile_shape": list(dataset.tile_shape), "train": dataset.train_size, "validation": len(dataset.x_val), "test": len(dataset.x_test)},
            "model": {"arch": model.arch, "code_shape": list(model.code_shape), "code_length": model.code_length, "parameters": int(model.count_params()), "value_range": list(model.value_range), **({"lmbda": model.lmbda} if hasattr(model, "lmbda") else {}), **({"options": registry.options_dict(options)} if options is not None else {})},
            "status": "running",
        }
    meta["status"] = "running"
    meta["replicas"] = placement.replicas
    if placement.chief:
        _write_json(run_dir / "run.json", meta)

    steps = math.ceil(dataset.train_size / config.batch_size)
    with placement.strategy.scope():
        if config.rate:  # the model's own train_step computes distortion + lambda * rate
            model.compile(optimizer=_optimizer(config, steps))
        else:
            model.compile(optimizer=_optimizer(config, steps), loss=reconstruction_loss(model.loss_scale, config.loss, model.value_range), metrics=pixel_metrics(model.value_range))

    shard = config.strategy == "multi-worker"
    train_ds = train_pipeline(dataset, model.value_range, config.batch_size, config.seed, cache=config.cache, shard=shard, scales=config.scales, flip=config.flip)
    x_val = to_model_range(dataset.x_val, model.value_range)
    val_ds = eval_pipeline(dataset.x_val, model.value_range, max(config.batch_size, 256), shard=shard)

    fit_callbacks = _callbacks(model, work_dir, x_val, resume, config, dataset.train_size, show_progress=not quiet and placement.chief)
    try:
        history = model.fit(train_ds, validation_data=val_ds, epochs=config.epochs, callbacks=fit_callbacks + list(callbacks or []), verbose=0, shuffle=False)
    except NaNLoss as exc:
        meta["status"] = "failed: NaN loss"
        if placement.chief:
            _write_json(run_dir / "run.json", meta)
        raise CaeError(f"training stopped: {exc}; try a lower --learning-rate (run folder: {run_dir})", FAILURE) from None
    except BaseException:
        if placement.chief and created and _best_val_loss(run_dir / "history.csv") is None:
            shutil.rmtree(run_dir, ignore_errors=True)  # no epoch finished: nothing worth keeping
        raise

    history_dict = {k: [float(v) for v in vs] for k, vs in history.history.items()}
    if not placement.chief:  # the chief writes the model and results; this worker's files go
        placement.finish(run_dir)
        return TrainResult(run_dir, history_dict, {}, {})
    validation, test = _write_outputs(run_dir, model, dataset)
    meta["status"] = "finished"
    meta["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
    _write_json(run_dir / "run.json", meta)
    return TrainResult(run_dir, history_dict, validation, test)


def _callbacks(model, work_dir: Path, x_val, resume: bool, config: TrainConfig, train_size: int, show_progress: bool) -> list:
    """The run's Keras callbacks: backup/resume, best checkpoint, CSV, TensorBoard, images, NaN stop, progress."""
    import keras

    callbacks = [
        keras.callbacks.BackupAndRestore(str(work_dir / "backup")),
        keras.callbacks.ModelCheckpoint(str(work_dir / "best-checkpoint.keras"), monitor="val_loss", save_best_only=True, initial_value_threshold=_best_val_loss(work_dir / "history.csv")),
        keras.callbacks.CSVLogger(str(work_dir / "history.csv"), append=resume),
        keras.callbacks.TensorBoard(str(work_dir / "tensorboard"), write_graph=False),
        _reconstruction_callback(model, x_val, work_dir / "tensorboard" / "images"),
        _nan_callback(),
    ]
    if show_progress:
        from tqdm.keras import TqdmCallback

        callbacks.append(TqdmCallback(epochs=config.epochs, data_size=train_size, batch_size=config.batch_size, verbose=1 if sys.stderr.isatty() else 0, file=sys.stderr, dynamic_ncols=True, leave=False))
    return callbacks


def _write_outputs(run_dir: Path, model, dataset) -> tuple[dict, dict]:
    """model.keras (the best checkpoint without optimizer state), its LiteRT files, and the results files."""
    from cae_compress.models.export import export_lite
    from cae_compress.models import load_model, save_model

    checkpoint = run_dir / "best-checkpoint.keras"
    best = load_model(checkpoint) if checkpoint.exists() else model
    save_model(best, run_dir / "model.keras")  # a third of the checkpoint's size
    export_lite(best, run_dir / "model.keras")  # the light inference path for encode/decode
    checkpoint.unlink(missing_ok=True)
    validation = evaluate(best, dataset.x_val)
    test = evaluate(best, dataset.x_test)
    _write_json(run_dir / "validation_results.json", validation)
    _write_json(run_dir / "test_results.json", test)
    return validation, test
