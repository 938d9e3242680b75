"""tf.distribute: two CPU replicas with MirroredStrategy, two workers on localhost, resuming elsewhere."""

import csv
import json
import os
import socket
import subprocess
import sys

import keras
import pytest

from cae_compress.errors import CaeError
from cae_compress.training.train import TrainConfig, train


def _losses(run):
    with (run / "history.csv").open() as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _train_cmd(tiny_npz, run, *extra):
    return [sys.executable, "-m", "cae_compress", "train", "--dataset", str(tiny_npz), "--code-length", "8", "--filters", "4",
            "--epochs", "3", "--batch-size", "64", "--learning-rate", "3e-3", "--run-dir", str(run), "--quiet", *extra]


def test_mirrored_strategy_on_two_cpu_replicas(tiny_npz, tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "CAE_CPU_REPLICAS": "2"}
    r = subprocess.run(_train_cmd(tiny_npz, run, "--strategy", "mirrored"), env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    assert json.loads((run / "run.json").read_text())["replicas"] == 2
    losses = _losses(run)
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert (run / "model.keras").is_file() and (run / "test_results.json").is_file()


def test_multi_worker_strategy_on_localhost(tiny_npz, tmp_path):
    run = tmp_path / "run"
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    procs = []
    for index in range(2):
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        procs.append(subprocess.Popen(_train_cmd(tiny_npz, run, "--strategy", "multi-worker"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        outs = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err
    meta = json.loads((run / "run.json").read_text())
    assert meta["replicas"] == 2 and meta["status"] == "finished"
    losses = _losses(run)
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert (run / "model.keras").is_file() and (run / "validation_results.json").is_file()
    assert not (run / ".workers").exists()  # the second worker's files are gone


def test_resume_on_another_number_of_replicas(tiny_npz, tmp_path):
    """Killed while training on two replicas, resumed on one."""
    run = tmp_path / "run"
    script = f"""
import keras
from cae_compress.training.train import TrainConfig, train
class Kill(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise SystemExit(3)
train(TrainConfig(dataset={str(tiny_npz)!r}, code_length=8, filters=4, epochs=4, batch_size=64, strategy="mirrored"),
      run_dir={str(run)!r}, quiet=True, callbacks=[Kill()])
"""
    r = subprocess.run([sys.executable, "-c", script], env={**os.environ, "CAE_CPU_REPLICAS": "2"}, capture_output=True, text=True, timeout=180)
    assert r.returncode == 3, r.stderr
    assert json.loads((run / "run.json").read_text())["replicas"] == 2

    seen = []

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(epoch)

    result = train(TrainConfig(strategy="default"), run_dir=run, resume=True, quiet=True, callbacks=[Record()])
    assert seen == [2, 3]
    assert json.loads((run / "run.json").read_text())["replicas"] == 1
    assert len(_losses(run)) == 4 and result.test["psnr"] > 0


def test_multi_worker_needs_tf_config(tiny_npz, tmp_path, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(CaeError, match="needs TF_CONFIG"):
        train(TrainConfig(dataset=str(tiny_npz), strategy="multi-worker", epochs=1), run_dir=tmp_path / "r", quiet=True)
    with pytest.raises(CaeError, match="unknown strategy"):
        train(TrainConfig(dataset=str(tiny_npz), strategy="ps"), run_dir=tmp_path / "r", quiet=True)
