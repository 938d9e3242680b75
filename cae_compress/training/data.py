"""Data sets for training and evaluation, as uint8 tiles of the model's input size.

``--dataset`` takes:

* ``cifar10`` or ``mnist``: first ``$CAE_DATA_DIR/<name>.npz`` (arrays
  ``x_train``/``x_test``, the layout of Keras's ``mnist.npz``), then Keras's own
  loader, which reads its cache in ``~/.keras/datasets`` or downloads;
* a path to an ``.npz`` file with ``x_train`` and ``x_test`` arrays;
* a folder of images (any format Pillow reads, searched recursively): training
  takes random crops of the tile size each epoch from most of the files; a
  held-out part of the files gives fixed validation tiles, which also serve
  as the test split (a folder has no official one).

The validation split is taken from the training set with a fixed seed, so runs
with different ``--seed`` values validate on the same images; the test split
is the data set's official one.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from cae_compress.errors import CaeError
from cae_compress.io.images import list_images, read_image, to_channels

BUILTIN = ("cifar10", "mnist")
VALIDATION_SEED = 20261123
MAX_VALIDATION_TILES = 5000


@dataclass
class Dataset:
    """Tiles of one data set: ``x_val``/``x_test`` fixed arrays, training tiles per epoch.

    Arrays are uint8 (N, H, W, C).  For array data sets ``x_train`` holds every
    training tile.  A folder is never held in memory: ``train_files`` lists its
    training images and ``train_counts`` how many random crops each gives per
    epoch (as many as it holds whole tiles); :func:`train_pipeline` streams
    them.
    """

    name: str
    tile_shape: tuple[int, int, int]
    x_val: np.ndarray
    x_test: np.ndarray
    x_train: np.ndarray | None = None
    train_files: list[str] = field(default_factory=list)
    train_counts: list[int] = field(default_factory=list)

    @property
    def train_size(self) -> int:
        """Training tiles per epoch."""
        return len(self.x_train) if self.x_train is not None else int(sum(self.train_counts))


def _as_nhwc(x: np.ndarray, label: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise CaeError(f"{label}: expected images of shape (N, H, W[, 1 or 3]), got {x.shape}")
    if x.dtype != np.uint8:
        if x.size and (x.min() < 0 or x.max() > 255):
            raise CaeError(f"{label}: pixel values must be 0..255")
        x = x.astype(np.uint8)
    return x


def _convert(x: np.ndarray, grayscale: bool) -> np.ndarray:
    channels = 1 if grayscale or x.shape[-1] == 1 else 3
    if x.shape[-1] == channels:
        return x
    return np.stack([to_channels(img, channels) for img in x]) if len(x) else x[..., :channels]


def _split(x_train: np.ndarray, val_split: float) -> tuple[np.ndarray, np.ndarray]:
    if not 0 < val_split < 1:
        raise CaeError(f"--val-split must be between 0 and 1, got {val_split}")
    n_val = max(1, int(round(len(x_train) * val_split)))
    if n_val >= len(x_train):
        raise CaeError(f"a training set of {len(x_train)} images is too small to split off a validation set")
    order = np.random.default_rng(VALIDATION_SEED).permutation(len(x_train))
    return x_train[np.sort(order[n_val:])], x_train[np.sort(order[:n_val])]


def _load_npz(path: Path, label: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            if "x_train" not in f or "x_test" not in f:
                raise CaeError(f"{label}: an .npz data set needs arrays x_train and x_test (has: {', '.join(f.files)})")
            return _as_nhwc(f["x_train"], label), _as_nhwc(f["x_test"], label)
    except CaeError:
        raise
    except Exception as exc:
        raise CaeError(f"{label}: cannot read as .npz ({exc})") from None


def _load_builtin(name: str) -> tuple[np.ndarray, np.ndarray]:
    data_dir = os.environ.get("CAE_DATA_DIR")
    if data_dir and (Path(data_dir) / f"{name}.npz").is_file():
        return _load_npz(Path(data_dir) / f"{name}.npz", f"{data_dir}/{name}.npz")
    try:
        import keras

        (x_train, _), (x_test, _) = getattr(keras.datasets, name).load_data()
    except Exception as exc:
        where = f"$CAE_DATA_DIR={data_dir}" if data_dir else "$CAE_DATA_DIR (not set)"
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise CaeError(
            f"{name}: no {name}.npz in {where} and Keras could not download it ({reason}); "
            f"put {name}.npz (arrays x_train, x_test) in a folder and set CAE_DATA_DIR to it"
        ) from None
    return _as_nhwc(x_train, name), _as_nhwc(x_test, name)


def _image_size(path: Path) -> tuple[int, int] | None:
    """(height, width) from the file header alone, or None for a file Pillow cannot open."""
    try:
        with Image.open(path) as img:
            w, h = img.size
            if img.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # EXIF rotation swaps the sides
                w, h = h, w
            return h, w
    except Exception:
        return None


def _load_folder(folder: Path, tile: int, grayscale: bool, val_split: float) -> Dataset:
    files, sizes, skipped = [], [], 0
    for f in list_images(folder):
        size = _image_size(f)
        if size is None:
            print(f"cae: warning: skipping {f}: not an image Pillow can read", file=sys.stderr)
            skipped += 1
            continue
        files.append(f)
        sizes.append(size)
    if not files:
        what = "no readable images" if skipped else "no images"
        raise CaeError(f"{folder}: {what} found (looked for png, jpg, webp, bmp, tiff, ... recursively)")
    small = [str(f) for f, (h, w) in zip(files, sizes) if h < tile or w < tile]
    if small:
        raise CaeError(f"{folder}: {len(small)} image(s) are smaller than the {tile}x{tile} model input, e.g. {small[0]}")
    channels = 1 if grayscale else 3
    order = np.random.default_rng(VALIDATION_SEED).permutation(len(files))
    n_val = max(1, int(round(len(files) * val_split))) if len(files) > 1 else 0
    val_idx = sorted(order[:n_val]) or [0]
    train_idx = sorted(order[n_val:]) or [0]
    tiles = []
    for i in val_idx:  # fixed tiles of held-out files, up to MAX_VALIDATION_TILES
        try:
            a = to_channels(read_image(files[i], quiet=True), channels)
        except CaeError as exc:
            raise CaeError(f"{folder}: {exc.message}") from None
        tiles += [a[y : y + tile, x : x + tile] for y in range(0, a.shape[0] - tile + 1, tile) for x in range(0, a.shape[1] - tile + 1, tile)]
        if len(tiles) >= MAX_VALIDATION_TILES:
            break
    x_val = np.stack(tiles[:MAX_VALIDATION_TILES])
    counts = [max(1, (sizes[i][0] // tile) * (sizes[i][1] // tile)) for i in train_idx]
    return Dataset(
        str(folder), (tile, tile, channels), x_val=x_val, x_test=x_val,
        train_files=[str(files[i]) for i in train_idx], train_counts=counts,
    )


def load_dataset(name: str, grayscale: bool = False, val_split: float = 0.1, tile_size: int = 32) -> Dataset:
    """Load ``name`` (``cifar10``, ``mnist``, an ``.npz`` path or an image folder) as a :class:`Dataset`.

    ``tile_size`` only matters for folders (array data sets define their own).
    """
    path = Path(name)
    if name in BUILTIN:
        x_train, x_test = _load_builtin(name)
    elif path.is_dir():
        if tile_size < 3:
            raise CaeError(f"--tile-size must be at least 3, got {tile_size}")
        return _load_folder(path, tile_size, grayscale, val_split)
    elif path.suffix == ".npz" and path.is_file():
        x_train, x_test = _load_npz(path, name)
    elif path.suffix == ".npz" or os.sep in name or path.exists():
        raise CaeError(f"{name}: no such data set file or folder")
    else:
        raise CaeError(f"unknown dataset '{name}' (use cifar10, mnist, an .npz file or a folder of images)")
    if len(x_train) == 0 or len(x_test) == 0:
        raise CaeError(f"{name}: x_train and x_test must not be empty")
    if x_train.shape[1] < 3 or x_train.shape[2] < 3:
        raise CaeError(f"{name}: images of {x_train.shape[1]}x{x_train.shape[2]} are smaller than the smallest model input (3x3)")
    x_train, x_test = _convert(x_train, grayscale), _convert(x_test, grayscale)
    x_train, x_val = _split(x_train, val_split)
    return Dataset(name, tuple(int(d) for d in x_train.shape[1:]), x_val=x_val, x_test=x_test, x_train=x_train)


# ------------------------------------------------------------------ tf.data pipelines
SHUFFLE_TILES = 4096  # shuffle buffer of a streamed folder, in tiles


def _options(shard: bool):
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False  # with autotune, fit() stalls for seconds at each epoch's end here
    if shard:
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return options


def _scale(value_range):
    import tensorflow as tf

    lo, hi = value_range

    def scale(x):
        x = tf.cast(x, tf.float32) * ((hi - lo) / 255.0) + lo
        return x, x

    return scale


def eval_pipeline(tiles: np.ndarray, value_range, batch_size: int, shard: bool = False):
    """Fixed tiles as (x, x) batches in the model's value range."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(tiles).batch(batch_size).map(_scale(value_range)).prefetch(2)
    return ds.with_options(_options(shard))


def _enlarge(scales: tuple[int, ...], seed: int):
    """A tf.data map: enlarge each tile by a random factor of ``scales`` (bicubic), then crop back to its size.

    A model trained on 32x32 thumbnails meets large photos, whose pixels are
    far smoother; enlarged crops of the same thumbnails look more like them.
    """
    import tensorflow as tf

    factors = tf.constant(scales, tf.int32)

    def enlarge(x):
        shape = tf.shape(x)
        f = tf.random.shuffle(factors, seed=seed)[0]
        big = tf.image.resize(tf.cast(x, tf.float32), shape[:2] * f, method="bicubic")
        crop = tf.image.random_crop(big, shape, seed=seed)
        return tf.cast(tf.clip_by_value(tf.round(crop), 0.0, 255.0), tf.uint8)

    return enlarge


def train_pipeline(
    dataset: Dataset, value_range, batch_size: int, seed: int, cache: bool = False, shard: bool = False,
    shuffle_tiles: int = SHUFFLE_TILES, scales: tuple[int, ...] = (1,), flip: bool = False,
):
    """Training batches (x, x), reshuffled every epoch.

    Array data sets shuffle the whole array.  Folders stream: the file list is
    shuffled, files are decoded (Pillow) and cropped in parallel, crops pass a
    shuffle buffer of ``shuffle_tiles`` tiles, so memory does not grow with the
    folder; ``cache`` keeps the decoded crops' source images in memory after
    the first epoch (faster, but no longer bounded).  ``scales`` other than
    ``(1,)`` enlarge each tile by a random one of those factors and crop it
    back (:func:`_enlarge`); ``flip`` mirrors each tile left to right with
    probability 1/2 (twice the distinct tiles of a small data set).
    """
    import tensorflow as tf

    if dataset.x_train is not None:
        ds = tf.data.Dataset.from_tensor_slices(dataset.x_train)
        if cache:
            ds = ds.cache()
        ds = ds.shuffle(min(len(dataset.x_train), 50_000), seed=seed, reshuffle_each_iteration=True)
    else:
        shape = dataset.tile_shape
        files = tf.data.Dataset.from_tensor_slices((dataset.train_files, np.asarray(dataset.train_counts, np.int64)))
        files = files.shuffle(len(dataset.train_files), seed=seed, reshuffle_each_iteration=True)

        def read(path):
            return to_channels(read_image(path.decode(), quiet=True), shape[2])

        def crops(image, count, crop_seed):
            rng = np.random.default_rng(int(crop_seed))
            ys = rng.integers(0, image.shape[0] - shape[0] + 1, int(count))
            xs = rng.integers(0, image.shape[1] - shape[1] + 1, int(count))
            return np.stack([image[y : y + shape[0], x : x + shape[1]] for y, x in zip(ys, xs)])

        def load(path, count):
            image = tf.ensure_shape(tf.numpy_function(read, [path], tf.uint8, stateful=False), [None, None, shape[2]])
            return image, count

        def crop(image, count):
            crop_seed = tf.random.uniform([], 0, 2**62, dtype=tf.int64)
            return tf.ensure_shape(tf.numpy_function(crops, [image, count, crop_seed], tf.uint8, stateful=False), [None, *shape])

        tf.random.set_seed(seed)
        ds = files.map(load, num_parallel_calls=os.cpu_count() or 1, deterministic=True)
        if cache:
            ds = ds.cache()
        ds = ds.map(crop, num_parallel_calls=os.cpu_count() or 1, deterministic=True)
        ds = ds.unbatch().shuffle(shuffle_tiles, seed=seed, reshuffle_each_iteration=True)
    if tuple(scales) != (1,):
        ds = ds.map(_enlarge(tuple(scales), seed), num_parallel_calls=os.cpu_count() or 1, deterministic=True)
    if flip:
        ds = ds.map(lambda x: tf.image.random_flip_left_right(x, seed=seed), num_parallel_calls=os.cpu_count() or 1, deterministic=True)
    ds = ds.batch(batch_size).map(_scale(value_range)).prefetch(2)
    ds = ds.apply(tf.data.experimental.assert_cardinality(math.ceil(dataset.train_size / batch_size)))
    return ds.with_options(_options(shard))
