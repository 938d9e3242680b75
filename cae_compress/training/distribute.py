"""Training on several devices and machines with ``tf.distribute``.

``--strategy``:

* ``default``: one device (TensorFlow's default strategy);
* ``mirrored``: ``MirroredStrategy`` over every local GPU, or over the CPU's
  logical devices when there is no GPU (``CAE_CPU_REPLICAS=N`` splits the CPU
  into N of them; useful to try the multi-replica path without GPUs);
* ``multi-worker``: ``MultiWorkerMirroredStrategy``; the cluster and this
  worker's place in it come from ``TF_CONFIG`` (see the README).

``--batch-size`` is the global batch: each replica gets an equal share.
In a multi-worker run the chief (``chief`` task, or ``worker`` 0 without one)
writes the run folder; the other workers write their logs, checkpoints and
backups under ``<run>/.workers/<type>-<index>/``, removed when the run ends.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from cae_compress.errors import CaeError

STRATEGIES = ("default", "mirrored", "multi-worker")


@dataclass
class Placement:
    strategy: object
    chief: bool
    task: str  # e.g. "worker-1"; "" outside multi-worker runs

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync

    def work_dir(self, run_dir: Path) -> Path:
        """Where this worker writes: the run folder for the chief, a private folder for the others."""
        return run_dir if self.chief else run_dir / ".workers" / self.task

    def prepare_backup(self, run_dir: Path) -> None:
        """A worker without a backup of its own starts from the chief's: runs resume with more workers too."""
        if self.chief:
            return
        mine, chiefs = self.work_dir(run_dir) / "backup", run_dir / "backup"
        if not mine.exists() and chiefs.is_dir():
            shutil.copytree(chiefs, mine)

    def finish(self, run_dir: Path) -> None:
        if not self.chief:
            shutil.rmtree(self.work_dir(run_dir), ignore_errors=True)
            try:
                (run_dir / ".workers").rmdir()  # the last worker out removes the folder
            except OSError:
                pass


def split_cpu(replicas: int) -> None:
    """Expose the CPU as ``replicas`` logical devices (before TensorFlow initialises its devices)."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
    except RuntimeError:  # already initialised in this process: keep what there is
        pass


def _patch_keras_for_multi_worker() -> None:
    """Keras 3's per-step reduction of logged values fails under MultiWorkerMirroredStrategy.

    ``reduce_per_replica`` calls ``strategy.reduce("MEAN", v, axis=0)`` on
    scalar losses and metrics ("Invalid reduction dimension 0 for input with 0
    dimensions", keras-team/keras#20585).  A cross-replica mean of a scalar is
    ``axis=None``; everything else is left to Keras.
    """
    from keras import tree
    from keras.src.backend.tensorflow import trainer

    if getattr(trainer.reduce_per_replica, "_cae_patched", False):
        return
    import tensorflow as tf

    original = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if trainer._collective_all_reduce_multi_worker(strategy) and reduction in ("auto", "mean"):
            return tree.map_structure(
                lambda v: strategy.reduce("MEAN", v, axis=None) if isinstance(v, tf.distribute.DistributedValues) else v,
                values,
            )
        return original(values, strategy, reduction)

    reduce_per_replica._cae_patched = True
    trainer.reduce_per_replica = reduce_per_replica


def _task_from_env() -> tuple[str, int, dict]:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise CaeError("--strategy multi-worker needs TF_CONFIG (the cluster and this worker's task); see the README")
    try:
        config = json.loads(raw)
        return config["task"]["type"], int(config["task"]["index"]), dict(config["cluster"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CaeError(f"TF_CONFIG is not valid JSON with 'cluster' and 'task' ({exc})") from None


def is_chief(name: str) -> bool:
    """Whether this process writes the run folder (always, except for non-chief workers); no TensorFlow needed."""
    if name != "multi-worker":
        return True
    kind, index, cluster = _task_from_env()
    return kind == "chief" or (kind == "worker" and index == 0 and "chief" not in cluster)


def make_strategy(name: str) -> Placement:
    """The ``tf.distribute`` strategy for ``--strategy name`` and this process's role in it."""
    if name not in STRATEGIES:
        raise CaeError(f"unknown strategy '{name}' (choose from: {', '.join(STRATEGIES)})")
    import tensorflow as tf

    if name == "default":
        return Placement(tf.distribute.get_strategy(), True, "")
    if name == "mirrored":
        replicas = int(os.environ.get("CAE_CPU_REPLICAS", "0") or 0)
        gpus = tf.config.list_physical_devices("GPU")
        if replicas > 1 and not gpus:
            split_cpu(replicas)
        devices = None if gpus else [d.name for d in tf.config.list_logical_devices("CPU")]
        return Placement(tf.distribute.MirroredStrategy(devices), True, "")
    kind, index, _ = _task_from_env()
    _patch_keras_for_multi_worker()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    return Placement(strategy, is_chief(name), f"{kind}-{index}")
