"""Adding an architecture is its module plus one registry line: a toy one, registered here, goes through the CLI.

The toy model codes the mean colour of every 4x4 block, zlib-compressed: its
codec answers the runtime protocol (``compress``/``decompress``), so the
container writes it as a version 3 file without any change to ``codec.py``,
``format.py`` or any other codec.
"""

from __future__ import annotations

import subprocess
import sys
import zlib

import keras
import numpy as np
import pytest
from keras import layers
from PIL import Image
from typer.testing import CliRunner

from cae_compress import registry
from cae_compress.cli import app
from cae_compress.codecs.base import Codec
from cae_compress.errors import CaeError
from cae_compress.models import CAE, save_model
from conftest import smooth_images


@keras.saving.register_keras_serializable(package="cae_tests")
class ToyCAE(CAE):
    @property
    def tile_shape(self):
        return (4, 4, 3)

    @property
    def code_shape(self):
        return (1, 1, 3)


def build_toy(input_shape, code_length, filters, l2_penalty, l1_code):
    inp = keras.Input((None, None, 3))
    encoder = keras.Model(inp, layers.AveragePooling2D(4)(inp))
    cin = keras.Input((None, None, 3))
    decoder = keras.Model(cin, layers.UpSampling2D(4)(cin))
    return ToyCAE(encoder, decoder, arch="toy")


class ToyCodec(Codec):
    version = 3
    reads = (3,)

    def compress(self, pixels, quality=None, *, progress=None):
        h, w, _ = pixels.shape
        padded = np.pad(pixels, ((0, -h % 4), (0, -w % 4), (0, 0)), mode="edge").astype(float)
        means = padded.reshape(padded.shape[0] // 4, 4, padded.shape[1] // 4, 4, 3).mean(axis=(1, 3))
        return [zlib.compress(np.rint(means).astype(np.uint8).tobytes())], b"toy"

    def decompress(self, streams, record, height, width, label="<input>", progress=None):
        assert record == b"toy"
        means = np.frombuffer(zlib.decompress(streams[0]), np.uint8).reshape(-(-height // 4), -(-width // 4), 3)
        return means.repeat(4, axis=0).repeat(4, axis=1)[:height, :width]


def test_a_toy_architecture_registered_here_round_trips_through_the_cli(tmp_path, monkeypatch):
    monkeypatch.setitem(registry.ARCHITECTURES, "toy", registry.Architecture("toy", build_toy, ToyCodec))
    from cae_compress.models import build_model

    path = save_model(build_model("toy", (4, 4, 3)), tmp_path / "toy.keras")
    img = smooth_images(1, 30, seed=8)[0]
    Image.fromarray(img).save(tmp_path / "a.png")
    runner = CliRunner()
    r = runner.invoke(app, ["encode", str(tmp_path / "a.png"), "--model-path", str(path)])
    assert r.exit_code == 0, r.output
    data = (tmp_path / "a.cae").read_bytes()
    assert data[4] == 3  # a version 3 file, written by the codec from the model's streams
    (tmp_path / "a.png").rename(tmp_path / "original.png")
    r = runner.invoke(app, ["decode", str(tmp_path / "a.cae"), "--model-path", str(path)])
    assert r.exit_code == 0, r.output
    out = np.asarray(Image.open(tmp_path / "a.png")).astype(float)
    assert out.shape == img.shape
    assert 10 * np.log10(255**2 / np.mean((out - img) ** 2)) > 25  # against the original pixels


def test_flag_errors_and_train_help_do_not_import_tensorflow():
    script = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from cae_compress.cli import app\n"
        "r = CliRunner().invoke(app, ['train', '--model', 'nope', '--dataset', 'x'])\n"
        "assert r.exit_code == 2 and \"unknown model 'nope'\" in r.output, r.output\n"
        "r = CliRunner().invoke(app, ['train', '--help'])\n"
        "assert r.exit_code == 0\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "False"]


def test_every_registered_architecture_names_a_codec_that_reads_what_it_writes():
    for name, arch in registry.ARCHITECTURES.items():
        codec_class = arch.codec_class()
        assert issubclass(codec_class, Codec) and codec_class.version in codec_class.reads
        assert registry.entropy_coded(name) == codec_class.entropy_coded == (name in ("factorized", "hyperprior", "channel-context", "shallow"))
    versions = {a.codec_class().version for a in registry.ARCHITECTURES.values()}
    assert versions == {1, 2, 3}


def test_architecture_options_parse_from_key_value_strings_and_refuse_what_they_do_not_know():
    options = registry.parse_options("channel-context", ["synthesis_widths=128,64,32"])
    assert options.synthesis_widths == (128, 64, 32)
    assert registry.options_dict(options) == {"synthesis_widths": [128, 64, 32]}
    assert registry.parse_options("shallow", ["hidden=16"]).hidden == 16
    assert registry.parse_options("hyperprior", []).synthesis_widths is None
    assert registry.parse_options("dense", []) is None
    for name, pairs, message in (("dense", ["width=3"], "takes no architecture options"), ("hyperprior", ["widths=1,2,3"], "key one of: synthesis_widths"),
                                 ("shallow", ["hidden=many"], "not a valid int"), ("hyperprior", ["synthesis_widths=8,8"], "three positive widths"),
                                 ("hyperprior", ["synthesis_widths"], "expected key=value")):
        with pytest.raises(CaeError, match=message):
            registry.parse_options(name, pairs)


def test_export_and_training_ask_the_model_never_its_class():
    """No ``isinstance(x, SomeCAE)`` in models/ or training/: what a model does at export and evaluation is its own method."""
    import ast
    from pathlib import Path

    root = Path(registry.__file__).parent
    found = []
    for path in [*(root / "models").glob("*.py"), *(root / "training").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance" and len(node.args) == 2:
                names = [n.id if isinstance(n, ast.Name) else getattr(n, "attr", "") for n in ast.walk(node.args[1]) if isinstance(n, (ast.Name, ast.Attribute))]
                found += [f"{path.name}:{node.lineno} {n}" for n in names if n.endswith("CAE") and n != "CAE"]
    assert not found, found


def test_builders_take_their_architecture_options():
    from cae_compress.models import build_model

    narrow = build_model("hyperprior", (64, 64, 3), 12, 8, options=registry.parse_options("hyperprior", ["synthesis_widths=8,6,4"]))
    assert [narrow.decoder.get_layer(f"deconv_{i}").filters for i in range(3)] == [8, 6, 4]
    shallow = build_model("shallow", (64, 64, 3), 12, 8, options=registry.parse_options("shallow", ["hidden=4"]))
    assert shallow.decoder.get_layer("up").filters == 8  # two branches of `hidden` channels
    assert build_model("hyperprior", (64, 64, 3), 12, 8).decoder.get_layer("deconv_2").filters == 8  # no options: the defaults
    with pytest.raises(CaeError, match="takes no architecture options"):
        build_model("dense", (32, 32, 3), 16, options=registry.parse_options("shallow", []))


def test_a_training_run_checks_its_architecture_options_before_anything_runs(tmp_path):
    from cae_compress.training.train import TrainConfig, train

    with pytest.raises(CaeError, match="key one of: hidden"):
        train(TrainConfig(model="shallow", dataset=str(tmp_path / "none.npz"), arch_options=("width=3",)), run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    TrainConfig(model="shallow", arch_options=["hidden=4"]).validate()  # as read back from run.json: a list
