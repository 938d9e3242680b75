"""Shipped models: found by name, manifests that match their files, the default for encode."""

import hashlib
import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from cae_compress import zoo
from cae_compress.cli import app
from cae_compress.training.train import TrainConfig, train
from conftest import smooth_images

runner = CliRunner()


@pytest.fixture(scope="module")
def finished_run(tiny_npz, tmp_path_factory):
    run = tmp_path_factory.mktemp("zoo") / "run"
    train(TrainConfig(dataset=str(tiny_npz), code_length=8, filters=4, epochs=1, batch_size=64), run_dir=run, quiet=True)
    return run


@pytest.fixture
def shipped(finished_run, tmp_path, monkeypatch):
    """A pretrained folder holding one published model, in place of the package's own."""
    folder = tmp_path / "pretrained"
    zoo.publish(finished_run, "cifar10-128", folder)
    monkeypatch.setattr(zoo, "PRETRAINED_DIR", folder)
    return folder


def test_publish_writes_a_manifest_that_matches(shipped, finished_run):
    m = json.loads((shipped / "cifar10-128.json").read_text())
    assert m["sha256"] == hashlib.sha256((shipped / "cifar10-128.keras").read_bytes()).hexdigest()
    test = json.loads((finished_run / "test_results.json").read_text())
    assert m["test"]["psnr"] == test["psnr"] and m["code_length"] == 8 and m["architecture"] == "dense"
    assert m["command"] is None or m["command"].startswith("cae train")


def test_shipped_model_is_the_default_and_found_by_name(shipped, tmp_path):
    r = runner.invoke(app, ["models"])
    assert r.exit_code == 0 and "cifar10-128*" in r.stdout
    Image.fromarray(smooth_images(1, 40)[0]).save(tmp_path / "a.png")
    assert runner.invoke(app, ["encode", str(tmp_path / "a.png")]).exit_code == 0  # no --model: the default
    (tmp_path / "a.png").unlink()
    r = runner.invoke(app, ["decode", str(tmp_path / "a.cae")])  # the model named in the file
    assert r.exit_code == 0, r.stderr
    assert Image.open(tmp_path / "a.png").size == (40, 40)


def test_without_shipped_models(monkeypatch, tmp_path):
    monkeypatch.setattr(zoo, "PRETRAINED_DIR", tmp_path)
    r = runner.invoke(app, ["encode", "x.png"])
    assert r.exit_code == 2 and "no default model" in r.stderr and "--model-path" in r.stderr


def test_publish_refuses_unfinished_runs(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"status": "running"}))
    (tmp_path / "validation_results.json").write_text("{}")
    (tmp_path / "test_results.json").write_text("{}")
    with pytest.raises(Exception, match="has not finished"):
        zoo.publish(tmp_path, "x", tmp_path / "out")


@pytest.fixture(scope="module")
def rate_run(tiny_npz, tmp_path_factory):
    run = tmp_path_factory.mktemp("zoo-rate") / "run"
    train(TrainConfig(model="factorized", dataset=str(tiny_npz), code_length=4, filters=4, epochs=1, batch_size=64), run_dir=run, quiet=True)
    return run


@pytest.fixture
def shipped_rates(rate_run, finished_run, tmp_path, monkeypatch):
    """Two shipped rate models (the same weights under two names) beside a dense one."""
    folder = tmp_path / "pretrained"
    for name in ("rate-q1", "rate-q2"):
        zoo.publish(rate_run, name, folder)
    zoo.publish(finished_run, "cifar10-128", folder)
    monkeypatch.setattr(zoo, "PRETRAINED_DIR", folder)
    return folder


def _model_in(path):
    from cae_compress.io import format as fmt

    return fmt.parse_header(path.read_bytes()).model_name


def test_rate_manifest_and_quality_means_one_thing(shipped_rates, tmp_path):
    m = json.loads((shipped_rates / "rate-q2.json").read_text())
    assert m["architecture"] == "factorized" and m["test"]["bpp"] > 0 and m["lmbda"] == 100.0
    assert zoo.rate_models() == ["rate-q1", "rate-q2"]
    assert zoo.default_model_name() == "rate-q2"  # the first of the preferred order that ships
    Image.fromarray(smooth_images(1, 40)[0]).save(tmp_path / "a.png")
    assert runner.invoke(app, ["encode", str(tmp_path / "a.png"), "--model", "rate-q1"]).exit_code == 0
    assert _model_in(tmp_path / "a.cae") == "rate-q1"
    # -q is the 0-100 quality of a model that has one; the factorized rate models are picked by name
    r = runner.invoke(app, ["encode", str(tmp_path / "a.png"), "-q", "1", "-f"])
    assert r.exit_code == 2 and "--quality needs a model with a continuous quality" in r.stderr
    r = runner.invoke(app, ["encode", str(tmp_path / "a.png"), "-q", "101", "-f"])
    assert r.exit_code == 2 and "between 0 and 100" in r.stderr
    r = runner.invoke(app, ["encode", str(tmp_path / "a.png"), "--model", "rate-q1", "--model-path", "x.keras", "-f"])
    assert r.exit_code == 2 and "give one" in r.stderr
    (tmp_path / "a.png").unlink()
    assert runner.invoke(app, ["decode", str(tmp_path / "a.cae")]).exit_code == 0  # found by the name in the file
    assert Image.open(tmp_path / "a.png").size == (40, 40)
