"""Reading and writing images with Pillow: every format it knows, as uint8 arrays.

All pixel I/O of the project goes through here, so the rules are in one place:
EXIF orientation is applied; grayscale (L, 1-bit, 16-bit I;16/I) stays one
channel; palette images become RGB (or RGBA when the palette is transparent);
RGBA keeps its alpha (LA for grayscale), which the codec keeps; 16-bit
and float images are scaled to 8 bits, a multi-frame image gives its first
frame, CMYK and other modes become RGB: each such reduction is said in one
:class:`~cae_compress.errors.CaeWarning` (``warnings.warn``; the CLI prints
it as one ``cae: warning:`` line).  :func:`read_picture` also gives the
metadata a ``.cae`` file carries (ICC profile, EXIF with its orientation
reset, XMP), from Pillow's ``info``.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from cae_compress.errors import CaeError, CaeWarning
from cae_compress.io import MAX_PIXELS
from cae_compress.io import container

# Decompression bombs: an image over MAX_PIXELS is refused from its header,
# before decoding, and so is one over Pillow's own limit (twice
# PIL.Image.MAX_IMAGE_PIXELS, about 179 MP by default), which this package
# respects and never changes; Pillow's warning below that is silenced in
# read_image, where these limits decide.

PNG_LEVEL = 1  # cae decode's PNG writer: on decoded Kodak photos 3.6x faster than Pillow's default 6, files 6 % larger

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".avif"}


def pil_to_array(img: Image.Image, label: str = "<image>", deep: bool = False) -> np.ndarray:
    """An (H, W, C) uint8 array of a PIL image: EXIF orientation applied, grayscale one channel, palettes expanded, 16 bits scaled to 8.

    Every reduction (16-bit or float samples, frames after the first, CMYK
    or another mode turned RGB) is named in one :class:`CaeWarning`
    starting with ``label``; ``deep``: the file's samples were 16-bit
    though Pillow gives the image as 8-bit (a 48- or 64-bit PNG).
    """
    return pil_to_picture(img, label, deep)[0]


def pil_to_picture(img: Image.Image, label: str = "<image>", deep: bool = False, quiet: bool = False) -> tuple[np.ndarray, container.Extras]:
    """The pixels (as :func:`pil_to_array`) and the metadata of a PIL image's ``info``: ICC profile, EXIF (orientation reset to 1 where it was applied), XMP.

    ``quiet``: no warning of reductions (training and benchmark data, read
    as 8-bit images on purpose).
    """

    def _warn(message: str) -> None:
        if not quiet:
            warnings.warn(CaeWarning(message), stacklevel=4)

    deep = deep or _deep(img)
    frames = getattr(img, "n_frames", 1) or 1
    if frames > 1:
        _warn(f"{label}: {frames} frames, encoding the first")
    extras = metadata(img)
    img = ImageOps.exif_transpose(img)
    mode = img.mode
    if deep or mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        _warn(f"{label}: 16-bit samples reduced to 8 bits")
    elif mode in ("I", "F"):
        _warn(f"{label}: {'32-bit integer' if mode == 'I' else 'floating-point'} samples reduced to 8 bits")
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if mode.startswith("I;16") or a.max() > 255 else 255.0
        a = np.clip(np.rint(a * (255.0 / hi)), 0, 255).astype(np.uint8)
        return a[..., None], extras
    if mode == "F":
        a = np.asarray(img, dtype=np.float64)
        return np.clip(np.rint(a), 0, 255).astype(np.uint8)[..., None], extras
    if mode in ("1", "L"):
        return np.asarray(img.convert("L"), dtype=np.uint8)[..., None], extras
    if mode == "LA" or mode == "La":
        return np.asarray(img.convert("LA"), dtype=np.uint8), extras
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode in ("RGBA", "RGBa", "PA"):
        img = img.convert("RGBA")
    elif mode == "RGBX":  # a padding byte: nothing lost
        img = img.convert("RGB")
    elif mode != "RGB":
        if mode == "CMYK" and extras.icc_profile is not None:  # a CMYK profile does not describe RGB pixels: convert through it to sRGB
            icc, extras = extras.icc_profile, replace(extras, icc_profile=None)
            try:
                img = _to_srgb(img, icc)
                _warn(f"{label}: CMYK converted to sRGB through its ICC profile (not kept)")
            except Exception:  # a profile LittleCMS cannot use
                _warn(f"{label}: CMYK converted to RGB, without its ICC profile (unusable, dropped)")
        else:
            _warn(f"{label}: {mode} converted to RGB")
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8), extras


def _to_srgb(img: Image.Image, icc: bytes) -> Image.Image:
    """``img`` converted through its ICC profile to sRGB (LittleCMS, perceptual intent)."""
    from PIL import ImageCms

    source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    return ImageCms.profileToProfile(img, source, ImageCms.createProfile("sRGB"), outputMode="RGB")


def _deep(img: Image.Image) -> bool:
    """Whether an image has 16-bit samples Pillow gives as 8 (a 48- or 64-bit PNG).

    Before ``load()`` its raw mode says so; after (Pillow's ``save`` loads the
    image before a plugin sees it), a PNG read from a file says so in its
    header's bit depth (byte 24), read again.
    """
    if img.mode.startswith("I"):
        return False
    if getattr(img, "tile", None):
        return any(";16" in str(t.args) for t in img.tile)
    path = getattr(img, "filename", None)
    if img.format != "PNG" or not path or not isinstance(path, (str, Path)):
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(25)
    except OSError:
        return False
    return len(head) == 25 and head[12:16] == b"IHDR" and head[24] == 16


def turned(img: Image.Image) -> bool:
    """Whether :func:`pil_to_array` turns ``img``: its orientation (EXIF, else XMP) is not 1, as ``ImageOps.exif_transpose`` reads it."""
    try:
        return img.getexif().get(0x0112, 1) not in (1, None)
    except Exception:  # a corrupt EXIF block: Pillow turns nothing
        return False


# Baseline TIFF tags of the file's own structure (sizes, samples, strips, tiles, compression, colour model) and the
# metadata carried apart (XMP 700, IPTC 33723, ICC 34675): not EXIF of the picture.
_TIFF_STRUCTURE = {254, 255, 256, 257, 258, 259, 262, 263, 266, 273, 277, 278, 279, 280, 281, 284, 290, 291, 292, 293, 296, 317, 320,
                   322, 323, 324, 325, 330, 332, 338, 339, 340, 341, 347, 512, 513, 514, 530, 531, 532, 700, 33723, 34675}


def metadata(img: Image.Image) -> container.Extras:
    """The ICC profile, EXIF and XMP of a PIL image, as a ``.cae`` file carries them (before its orientation is applied to the pixels).

    EXIF comes from ``info["exif"]`` (as JPEG, PNG, WebP, AVIF give it) or
    the image's EXIF tags (TIFF); XMP from ``info["xmp"]`` or PNG's
    ``XML:com.adobe.xmp`` text.  Where the EXIF orientation is not 1, the
    pixels get turned, so it is set to 1 in EXIF and XMP alike.
    """
    info = img.info
    exif = info.get("exif")
    if not exif and img.format == "TIFF":  # a TIFF's own tags are its IFD0: keep those that describe the picture, not its strips
        tags = img.getexif()
        for tag in list(tags):
            if tag in _TIFF_STRUCTURE:
                del tags[tag]
        exif = tags.tobytes() if len(tags) else None
    return carried(info.get("icc_profile"), exif, info.get("xmp") or info.get("XML:com.adobe.xmp"), turned(img))


def carried(icc, exif, xmp, turned_: bool) -> container.Extras:
    """An ICC profile, EXIF (bytes, with or without JPEG's prefix, or an ``Image.Exif``) and XMP (bytes or text) as a ``.cae``
    file carries them; ``turned_``: the pixels are turned as the EXIF said, so its orientation (and XMP's) is set to 1.
    What :func:`metadata` reads from an image and the Pillow plugin's ``save`` takes as options."""
    if isinstance(exif, Image.Exif):
        exif = exif.tobytes()
    exif = container.exif_tiff(exif)
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    xmp = bytes(xmp) if xmp else None
    if turned_:
        exif = None if exif is None else container.reset_orientation(exif)
        xmp = None if xmp is None else container.reset_xmp_orientation(xmp)
    return container.Extras(icc_profile=bytes(icc) if icc else None, exif=exif, xmp=xmp)


def read_image(source: str | Path | bytes, name: str | None = None, quiet: bool = False) -> np.ndarray:
    """Read an image file (or its bytes) into an (H, W, C) uint8 array, C in 1..4.

    Raises :class:`CaeError` naming the file for anything Pillow cannot read
    and for images over :data:`MAX_PIXELS` (checked before decoding).
    A reduction is a :class:`CaeWarning` (``quiet``: not).
    """
    return read_picture(source, name, quiet)[0]


def read_picture(source: str | Path | bytes, name: str | None = None, quiet: bool = False) -> tuple[np.ndarray, container.Extras]:
    """:func:`read_image`'s pixels and the image's metadata (:func:`metadata`)."""
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
                deep = _deep(img)
                img.load()
                return pil_to_picture(img, label, deep, quiet)
        except CaeError:
            raise
        except Image.DecompressionBombError as exc:
            raise CaeError(f"{label}: refused as a decompression bomb ({exc})") from None
        except Exception as exc:  # Pillow raises many kinds for bad data
            reason = "not an image Pillow can read" if isinstance(exc, Image.UnidentifiedImageError) else str(exc) or type(exc).__name__
            raise CaeError(f"{label}: {reason}") from None


def image_bytes(pixels: np.ndarray, fmt: str = "PNG", **save_args) -> bytes:
    """Encode an (H, W, C) uint8 array with Pillow in ``fmt`` (PNG, JPEG, WEBP, ...); C 2 and 4 are LA and RGBA."""
    arr = pixels[..., 0] if pixels.shape[-1] == 1 else pixels
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **save_args)
    return buf.getvalue()


# What each output format holds, in Pillow's writers: the metadata it writes, and whether alpha.
METADATA_FORMATS = {"PNG", "JPEG", "WEBP", "TIFF", "AVIF", "MPO"}
ALPHA_FORMATS = {"PNG", "WEBP", "TIFF", "AVIF"}  # Pillow writes RGBA to BMP, but reads it back RGB


def saving(pixels: np.ndarray, extras: container.Extras | None, fmt: str) -> tuple[np.ndarray, dict, list[str]]:
    """The pixels and Pillow save arguments that put ``extras`` (metadata) and alpha into a file of format ``fmt``, and what it cannot hold.

    PNG, JPEG, WebP, TIFF and AVIF hold an ICC profile, EXIF and XMP (PNG's
    XMP as its ``XML:com.adobe.xmp`` text); where a format holds none of
    them, or no alpha, the list names what was left out.
    """
    args: dict = {}
    left: list[str] = []
    if extras is not None:
        held = [(n, v) for n, v in (("ICC profile", extras.icc_profile), ("EXIF", extras.exif), ("XMP", extras.xmp)) if v is not None]
        if held and fmt not in METADATA_FORMATS:
            left += [n for n, _ in held]
        elif held:
            if extras.icc_profile is not None:
                args["icc_profile"] = extras.icc_profile
            if extras.exif is not None:
                args["exif"] = container.EXIF_PREFIX + extras.exif
            if extras.xmp is not None:
                if fmt == "PNG":
                    from PIL import PngImagePlugin

                    text = PngImagePlugin.PngInfo()
                    text.add_itxt("XML:com.adobe.xmp", extras.xmp.decode("utf-8", "replace"))
                    args["pnginfo"] = text
                elif fmt == "TIFF":  # Pillow's TIFF writer takes one set of tags: the EXIF's, and XMP's tag 700 among them
                    tags = Image.Exif()
                    if extras.exif is not None:
                        tags.load(extras.exif)
                    tags[700] = extras.xmp
                    args["exif"] = tags
                else:
                    args["xmp"] = extras.xmp
    if pixels.shape[-1] in (2, 4) and fmt not in ALPHA_FORMATS:
        pixels = pixels[..., :-1]
        left.append("alpha")
    return pixels, args, left


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
