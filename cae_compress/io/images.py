"""Reading and writing images with Pillow: every format it knows, as uint8 arrays.

All pixel I/O of the project goes through here, so the rules are in one place:
EXIF orientation is applied; grayscale (L, 1-bit, 16-bit I;16/I) stays one
channel; palette images become RGB (or RGBA when the palette is transparent);
RGBA keeps its alpha here, and the codec decides what to do with it; 16-bit
images are scaled to 8 bits.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from cae_compress.errors import CaeError
from cae_compress.io import MAX_PIXELS

# Decompression bombs: an image over MAX_PIXELS is refused from its header,
# before decoding, and so is one over Pillow's own limit (twice
# PIL.Image.MAX_IMAGE_PIXELS, about 179 MP by default), which this package
# respects and never changes; Pillow's warning below that is silenced in
# read_image, where these limits decide.

PNG_LEVEL = 1  # cae decode's PNG writer: on decoded Kodak photos 3.6x faster than Pillow's default 6, files 6 % larger

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".avif"}


def pil_to_array(img: Image.Image) -> np.ndarray:
    """An (H, W, C) uint8 array of a PIL image: EXIF orientation applied, grayscale one channel, palettes expanded, 16 bits scaled to 8."""
    img = ImageOps.exif_transpose(img)
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if mode.startswith("I;16") or a.max() > 255 else 255.0
        a = np.clip(np.rint(a * (255.0 / hi)), 0, 255).astype(np.uint8)
        return a[..., None]
    if mode == "F":
        a = np.asarray(img, dtype=np.float64)
        return np.clip(np.rint(a), 0, 255).astype(np.uint8)[..., None]
    if mode in ("1", "L"):
        return np.asarray(img.convert("L"), dtype=np.uint8)[..., None]
    if mode == "LA" or mode == "La":
        return np.asarray(img.convert("LA"), dtype=np.uint8)
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode in ("RGBA", "RGBa", "PA"):
        img = img.convert("RGBA")
    elif mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8)


def read_image(source: str | Path | bytes, name: str | None = None) -> np.ndarray:
    """Read an image file (or its bytes) into an (H, W, C) uint8 array, C in 1..4.

    Raises :class:`CaeError` naming the file for anything Pillow cannot read
    and for images over :data:`MAX_PIXELS` (checked before decoding).
    """
    label = name or (str(source) if not isinstance(source, bytes) else "<stdin>")
    try:
        fp = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")
    except OSError as exc:
        raise CaeError(f"{label}: cannot open ({exc.strerror})") from None
    with fp, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit below decides
        try:
            with Image.open(fp) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise CaeError(f"{label}: image of {img.width}x{img.height} pixels is too large (limit {MAX_PIXELS} pixels)")
                img.load()
                return pil_to_array(img)
        except CaeError:
            raise
        except Image.DecompressionBombError as exc:
            raise CaeError(f"{label}: refused as a decompression bomb ({exc})") from None
        except Exception as exc:  # Pillow raises many kinds for bad data
            reason = "not an image Pillow can read" if isinstance(exc, Image.UnidentifiedImageError) else str(exc) or type(exc).__name__
            raise CaeError(f"{label}: {reason}") from None


def image_bytes(pixels: np.ndarray, fmt: str = "PNG", **save_args) -> bytes:
    """Encode an (H, W, C) uint8 array with Pillow in ``fmt`` (PNG, JPEG, WEBP, ...)."""
    arr = pixels[..., 0] if pixels.shape[-1] == 1 else pixels
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **save_args)
    return buf.getvalue()


def format_for_path(path: str | Path, default: str = "PNG") -> str:
    """The Pillow format name for a file name's suffix (PNG when unknown)."""
    ext = Path(path).suffix.lower()
    Image.preinit()  # the common formats, without loading every plugin
    return Image.EXTENSION.get(ext) or Image.registered_extensions().get(ext, default)


def to_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """Convert an (H, W, C) uint8 array to 1 (luma, ITU-R 601) or 3 (RGB) channels; alpha is dropped."""
    c = pixels.shape[-1]
    if c in (2, 4):
        pixels = pixels[..., : c - 1]
        c -= 1
    if c == channels:
        return pixels
    if channels == 1:
        luma = pixels.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        return np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None]
    return np.repeat(pixels, 3, axis=-1)


def list_images(folder: str | Path) -> list[Path]:
    """Image files under ``folder``, recursively, by suffix, sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
