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

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cae_compress.errors import CaeError
from cae_compress.images import list_images, read_image, to_channels

BUILTIN = ("cifar10", "mnist")
VALIDATION_SEED = 20261123
MAX_VALIDATION_TILES = 5000


@dataclass
class Dataset:
    """Tiles of one data set: ``x_val``/``x_test`` fixed arrays, training tiles per epoch.

    Arrays are uint8 (N, H, W, C).  For array data sets ``x_train`` holds every
    training tile; for folders ``train_images`` holds whole images, and
    :meth:`train_tiles` draws fresh random crops from them on each call.
    """

    name: str
    tile_shape: tuple[int, int, int]
    x_val: np.ndarray
    x_test: np.ndarray
    x_train: np.ndarray | None = None
    train_images: list[np.ndarray] = field(default_factory=list)

    @property
    def train_size(self) -> int:
        if self.x_train is not None:
            return len(self.x_train)
        th, tw, _ = self.tile_shape
        return sum(max(1, (a.shape[0] // th) * (a.shape[1] // tw)) for a in self.train_images)

    def train_tiles(self, rng: np.random.Generator) -> np.ndarray:
        """One epoch of training tiles: the array, or as many random crops as the images hold tiles."""
        if self.x_train is not None:
            return self.x_train
        th, tw, _ = self.tile_shape
        out = np.empty((self.train_size, *self.tile_shape), np.uint8)
        i = 0
        for a in self.train_images:
            n = max(1, (a.shape[0] // th) * (a.shape[1] // tw))
            ys = rng.integers(0, a.shape[0] - th + 1, n)
            xs = rng.integers(0, a.shape[1] - tw + 1, n)
            for y, x in zip(ys, xs):
                out[i] = a[y : y + th, x : x + tw]
                i += 1
        return out


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


def _load_folder(folder: Path, tile: int, grayscale: bool, val_split: float) -> Dataset:
    import sys

    files = list_images(folder)
    images, skipped = [], 0
    channels = 1 if grayscale else 3
    for f in files:
        try:
            a = to_channels(read_image(f), channels)
        except CaeError as exc:
            print(f"cae: warning: skipping {exc.message}", file=sys.stderr)
            skipped += 1
            continue
        images.append(a)
    if not images:
        what = "no readable images" if skipped else "no images"
        raise CaeError(f"{folder}: {what} found (looked for {', '.join(sorted(s[1:] for s in ('.png', '.jpg', '.webp', '.bmp', '.tiff')))}, ... recursively)")
    small = [str(f) for f, a in zip(files, images) if a.shape[0] < tile or a.shape[1] < tile]
    if small:
        raise CaeError(f"{folder}: {len(small)} image(s) are smaller than the {tile}x{tile} model input, e.g. {small[0]}")
    order = np.random.default_rng(VALIDATION_SEED).permutation(len(images))
    n_val = max(1, int(round(len(images) * val_split))) if len(images) > 1 else 0
    val_imgs = [images[i] for i in sorted(order[:n_val])] or images
    train_imgs = [images[i] for i in sorted(order[n_val:])]
    tiles = [
        a[y : y + tile, x : x + tile]
        for a in val_imgs
        for y in range(0, a.shape[0] - tile + 1, tile)
        for x in range(0, a.shape[1] - tile + 1, tile)
    ][:MAX_VALIDATION_TILES]
    x_val = np.stack(tiles)
    return Dataset(str(folder), (tile, tile, channels), x_val=x_val, x_test=x_val, train_images=train_imgs)


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
