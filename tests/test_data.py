import numpy as np
import pytest
from PIL import Image

from cae_compress.training.data import load_dataset
from cae_compress.errors import CaeError
from conftest import SHARED_DATA, smooth_images


def test_npz_split_and_shapes(tiny_npz):
    ds = load_dataset(str(tiny_npz), val_split=0.25)
    assert ds.tile_shape == (16, 16, 3)
    assert len(ds.x_train) == 480 and len(ds.x_val) == 160 and len(ds.x_test) == 64
    assert ds.x_train.dtype == np.uint8
    # the validation split is fixed, whatever the seed of a run
    again = load_dataset(str(tiny_npz), val_split=0.25)
    np.testing.assert_array_equal(ds.x_val, again.x_val)
    # and disjoint from training
    train_rows = {r.tobytes() for r in ds.x_train}
    assert not any(r.tobytes() in train_rows for r in ds.x_val)


def test_grayscale_conversion(tiny_npz):
    ds = load_dataset(str(tiny_npz), grayscale=True)
    assert ds.tile_shape == (16, 16, 1)
    src = np.load(tiny_npz)["x_test"][0].astype(float)
    expected = np.rint(src @ [0.299, 0.587, 0.114])
    np.testing.assert_allclose(ds.x_test[0, ..., 0], expected, atol=1)


def test_builtin_name_reads_cae_data_dir(tmp_path, monkeypatch):
    x = np.random.default_rng(0).integers(0, 255, (50, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "mnist.npz", x_train=x, y_train=np.zeros(50), x_test=x[:10], y_test=np.zeros(10))
    monkeypatch.setenv("CAE_DATA_DIR", str(tmp_path))
    ds = load_dataset("mnist")
    assert ds.tile_shape == (28, 28, 1) and len(ds.x_test) == 10 and len(ds.x_train) + len(ds.x_val) == 50


def test_builtin_offline_without_file_says_where_to_put_it(tmp_path, monkeypatch):
    import keras

    def offline():
        raise OSError("URL fetch failure: network is unreachable")

    monkeypatch.setenv("CAE_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    with pytest.raises(CaeError) as err:
        load_dataset("cifar10")
    assert "cifar10.npz" in err.value.message and "CAE_DATA_DIR" in err.value.message
    assert "\n" not in err.value.message


def test_folder_dataset_recursive_mixed_formats(tmp_path, capsys):
    imgs = smooth_images(6, size=40, seed=3)
    (tmp_path / "sub").mkdir()
    Image.fromarray(imgs[0]).save(tmp_path / "a.png")
    Image.fromarray(imgs[1]).save(tmp_path / "b.jpg", quality=95)
    Image.fromarray(imgs[2]).save(tmp_path / "sub" / "c.webp", lossless=True)
    Image.fromarray(imgs[3]).convert("L").save(tmp_path / "sub" / "d.bmp")
    Image.fromarray(imgs[4]).convert("RGBA").save(tmp_path / "sub" / "e.tiff")
    (tmp_path / "sub" / "broken.png").write_bytes(b"\x89PNG not really")
    ds = load_dataset(str(tmp_path), tile_size=16, val_split=0.2)
    assert "skipping" in capsys.readouterr().err
    assert ds.tile_shape == (16, 16, 3)
    assert len(ds.train_files) == 4 and ds.train_counts == [4, 4, 4, 4] and ds.train_size == 16
    assert ds.x_val.shape == (4, 16, 16, 3)  # the held-out file's whole tiles
    np.testing.assert_array_equal(ds.x_test, ds.x_val)


def _epoch(ds):
    return np.concatenate([x.numpy() for x, _ in ds])


def test_folder_streams_fresh_crops_through_a_small_shuffle_buffer(tmp_path):
    from cae_compress.training.data import train_pipeline

    for i, img in enumerate(smooth_images(30, size=40, seed=6)):
        Image.fromarray(img).save(tmp_path / f"{i:02d}.png")
    ds = load_dataset(str(tmp_path), tile_size=16, val_split=0.1)
    assert ds.train_size == 27 * 4
    pipe = train_pipeline(ds, (0.0, 1.0), batch_size=10, seed=1, shuffle_tiles=8)  # buffer smaller than the data
    first, second = _epoch(pipe), _epoch(pipe)
    assert first.shape == second.shape == (108, 16, 16, 3)
    assert int(pipe.cardinality()) == 11
    assert first.min() >= 0 and first.max() <= 1
    assert not np.array_equal(first, second)  # new crops and order each epoch
    # every crop comes from a training image, none from the held-out one
    sources = np.stack([np.asarray(Image.open(f)) for f in ds.train_files]).astype(np.float32) / 255
    held_out = set(map(str, tmp_path.glob("*.png"))) - set(ds.train_files)
    assert len(held_out) == 3
    tile = first[0]
    assert any(np.allclose(src[y : y + 16, x : x + 16], tile) for src in sources for y in range(25) for x in range(25))


@pytest.mark.parametrize(
    "setup, message",
    [
        ("empty", "no images found"),
        ("unreadable", "no readable images"),
        ("small", "smaller than the 32x32 model input"),
    ],
)
def test_folder_errors(tmp_path, setup, message):
    if setup == "unreadable":
        (tmp_path / "x.png").write_bytes(b"garbage")
    elif setup == "small":
        Image.new("RGB", (20, 20)).save(tmp_path / "s.png")
    with pytest.raises(CaeError, match=message):
        load_dataset(str(tmp_path), tile_size=32)


@pytest.mark.parametrize(
    "name, message",
    [
        ("imagenet", "unknown dataset 'imagenet'"),
        ("missing/folder", "no such data set"),
        ("nothing.npz", "no such data set"),
    ],
)
def test_unknown_datasets(name, message):
    with pytest.raises(CaeError, match=message):
        load_dataset(name)


def test_npz_without_arrays(tmp_path):
    np.savez(tmp_path / "d.npz", images=np.zeros((3, 8, 8)))
    with pytest.raises(CaeError, match="needs arrays x_train and x_test"):
        load_dataset(str(tmp_path / "d.npz"))


@pytest.mark.skipif(not (SHARED_DATA / "cifar10.npz").is_file(), reason="../shared/data not present")
def test_shared_cifar10(monkeypatch):
    monkeypatch.setenv("CAE_DATA_DIR", str(SHARED_DATA))
    ds = load_dataset("cifar10")
    assert ds.tile_shape == (32, 32, 3)
    assert len(ds.x_train) == 45000 and len(ds.x_val) == 5000 and len(ds.x_test) == 10000


def test_enlarged_crops_are_smoother_tiles_of_the_same_size(tiny_npz):
    """--scales: each tile enlarged by a random factor and cropped back; factor 1 leaves it as it is."""
    from cae_compress.training.data import train_pipeline

    ds = load_dataset(str(tiny_npz))
    rng = np.random.default_rng(0)
    noisy = ds.__class__(**{**ds.__dict__, "x_train": rng.integers(0, 256, ds.x_train.shape, dtype=np.uint8)})
    plain = np.concatenate([x.numpy() for x, _ in train_pipeline(noisy, (0.0, 1.0), 64, 0)])
    big = np.concatenate([x.numpy() for x, _ in train_pipeline(noisy, (0.0, 1.0), 64, 0, scales=(4,))])
    assert big.shape == plain.shape and big.dtype == np.float32 and 0 <= big.min() and big.max() <= 1
    roughness = lambda a: np.abs(np.diff(a, axis=1)).mean()  # noqa: E731
    assert roughness(big) < roughness(plain) / 2  # 4x enlarged noise is much smoother than noise


def test_flip_mirrors_about_half_the_tiles_and_nothing_else(tiny_npz):
    """--flip: every tile comes out as itself or its mirror image, and both happen."""
    from cae_compress.training.data import train_pipeline

    ds = load_dataset(str(tiny_npz))
    rng = np.random.default_rng(1)
    noisy = ds.__class__(**{**ds.__dict__, "x_train": rng.integers(0, 256, ds.x_train.shape, dtype=np.uint8)})
    originals = {t.tobytes(): i for i, t in enumerate(noisy.x_train)}
    mirrored = {t[:, ::-1].tobytes(): i for i, t in enumerate(noisy.x_train)}
    tiles = np.concatenate([x.numpy() for x, _ in train_pipeline(noisy, (0.0, 255.0), 64, 0, flip=True)])
    kinds = [("same" if t.tobytes() in originals else "mirror" if t.tobytes() in mirrored else "other") for t in np.rint(tiles).astype(np.uint8)]
    assert len(kinds) == len(noisy.x_train) and "other" not in kinds
    assert 0.3 < kinds.count("mirror") / len(kinds) < 0.7


def test_scales_flag_is_checked(tiny_npz):
    from cae_compress.training.train import TrainConfig

    with pytest.raises(CaeError, match="--scales takes positive integers"):
        TrainConfig(dataset=str(tiny_npz), scales=(0, 2)).validate()
