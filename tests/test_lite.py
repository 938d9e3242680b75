"""The LiteRT inference path: same codes as TensorFlow within float rounding, no TensorFlow import."""

import subprocess
import sys

import numpy as np
import pytest

from cae_compress import codec, zoo
from cae_compress.io import format as fmt
from cae_compress.errors import CaeError
from cae_compress.runtime.files import ModelFiles
from conftest import smooth_images


def test_export_writes_three_files(lite_model_path):
    files = ModelFiles(lite_model_path)
    assert files.exported() == sorted([files.tflite("decoder"), files.tflite("encoder"), files.lite_json])
    for p in files.exported():
        assert p.stat().st_size > 0


def test_auto_picks_litert_and_tensorflow_on_request(lite_model_path, rgb_model_path):
    assert zoo.load(model_path=lite_model_path).backend == "litert"
    assert zoo.load(model_path=lite_model_path, backend="tensorflow").backend == "tensorflow"
    assert zoo.load(model_path=rgb_model_path).backend == "tensorflow"  # no .tflite beside it
    with pytest.raises(CaeError, match="no LiteRT files"):
        zoo.load(model_path=rgb_model_path, backend="litert")
    with pytest.raises(CaeError, match="unknown backend"):
        zoo.load(model_path=rgb_model_path, backend="onnx")


def test_litert_matches_tensorflow(lite_model_path):
    lite = zoo.load(model_path=lite_model_path, backend="litert")
    keras = zoo.load(model_path=lite_model_path, backend="tensorflow")
    assert lite.fingerprint == keras.fingerprint and lite.tile_shape == keras.tile_shape
    img = smooth_images(1, 70, seed=3)[0][:, :45]
    codes_l = lite.layout.encode(lite, img)
    codes_k = keras.layout.encode(keras, img)
    np.testing.assert_allclose(codes_l, codes_k, atol=1e-4)
    for dtype in ("float32", "uint8"):
        a, b = codec.encode(lite, img, dtype), codec.encode(keras, img, dtype)
        # a file from either path decodes on the other, within one grey level
        for data in (a, b):
            x = codec.decode(lite, data).astype(int)
            y = codec.decode(keras, data).astype(int)
            assert np.abs(x - y).max() <= 1
        assert np.abs(codec.decode(lite, a).astype(int) - codec.decode(keras, b).astype(int)).max() <= 1
        assert fmt.parse_header(a).fingerprint == fmt.parse_header(b).fingerprint


def test_litert_codes_do_not_depend_on_batch_size(lite_model_path):
    lite = zoo.load(model_path=lite_model_path)
    tile = smooth_images(1, 16, seed=1)[0]
    alone = lite.layout.encode(lite, tile)
    many = lite.layout.encode(lite, np.tile(tile, (12, 25, 1)))  # 300 tiles: batches of 128 and a padded rest
    assert alone.tobytes() == many[0].tobytes() == many[-1].tobytes()


def test_encode_decode_without_importing_tensorflow(lite_model_path, tmp_path):
    from PIL import Image

    Image.fromarray(smooth_images(1, 40)[0]).save(tmp_path / "a.png")
    script = (
        "import sys; from cae_compress import api\n"
        f"assert api.encode_files(['a.png'], model_path={str(lite_model_path)!r}) == 0\n"
        f"assert api.decode_files(['a.cae'], 'b.png', model_path={str(lite_model_path)!r}) == 0\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'\n"
    )
    r = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # no native chatter either
    assert (tmp_path / "b.png").is_file()


def test_training_exports_litert_files(tiny_npz, tmp_path):
    from cae_compress.training.train import TrainConfig, train

    train(TrainConfig(dataset=str(tiny_npz), code_length=8, filters=4, epochs=1, batch_size=64), run_dir=tmp_path / "run", quiet=True)
    assert ModelFiles(tmp_path / "run" / "model.keras").has_lite()
    assert zoo.load(model_path=tmp_path / "run").backend == "litert"


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_transposed_convolutions_rewritten_exactly(padding):
    import keras

    from cae_compress.models.export import _without_transposed_convolutions

    keras.utils.set_random_seed(0)
    inp = keras.Input((6, 7, 4))
    x = keras.layers.Conv2DTranspose(5, 3, padding=padding, activation="relu")(inp)
    out = keras.layers.Conv2DTranspose(3, (3, 5), strides=1, padding="valid", activation="sigmoid")(x)
    model = keras.Model(inp, out)
    rewritten = _without_transposed_convolutions(model)
    assert not any(isinstance(layer, keras.layers.Conv2DTranspose) for layer in rewritten.layers)
    x = np.random.default_rng(1).normal(size=(2, 6, 7, 4)).astype("float32")
    np.testing.assert_allclose(np.asarray(rewritten(x)), np.asarray(model(x)), atol=1e-5)


@pytest.mark.parametrize("kernel,stride", [(13, 8), (5, 4), (7, 4)])
def test_large_stride_transposed_convolutions_written_by_phase_groups_exactly(kernel, stride):
    """A large stride's transposed convolution becomes one small convolution per group of phases (the taps each phase has), then depth-to-space."""
    import keras

    from cae_compress.models.export import _without_transposed_convolutions

    keras.utils.set_random_seed(0)
    inp = keras.Input((None, None, 6))
    x = keras.layers.Conv2DTranspose(4, kernel, strides=stride, padding="same")(inp)
    out = keras.layers.Conv2DTranspose(3, 5, strides=2, padding="same", activation="sigmoid")(x)
    model = keras.Model(inp, out)
    rewritten = _without_transposed_convolutions(model)
    kinds = [type(layer).__name__ for layer in rewritten.layers]
    assert "Conv2DTranspose" not in kinds and kinds.count("Cropping2D") > 1  # several phase groups
    x = np.random.default_rng(1).normal(size=(2, 5, 7, 6)).astype("float32")
    np.testing.assert_allclose(np.asarray(rewritten(x)), np.asarray(model(x)), atol=1e-5)
