"""Version 4 of the ``.cae`` file: the 76-byte header, then typed, length-prefixed chunks.

``docs/format.md`` documents every byte.  A chunk is, as in PNG (and in the
shape RIFF/WebP and ISOBMFF share): its data length (u32 LE), a 4-letter
type, the data, and the CRC-32 of type and data (u32 LE).  The case of the
type's first letter says what a reader that does not know it does:
upper case is *critical* (refuse the file: it cannot be decoded without it),
lower case *ancillary* (skip it: the image is whole without it).

Chunks of version 4:

* ``IMAG`` (critical, first, exactly once): a layout byte (1, 2 or 3), then
  what a file of that version carries after its header, byte for byte;
* ``iccp``: an ICC colour profile, as it is;
* ``exif``: EXIF, as a TIFF stream (``II*\\0`` or ``MM\\0*``; no ``Exif\\0\\0``);
* ``xmpd``: an XMP packet (UTF-8 XML), as it is;
* ``alph``: the alpha plane, lossless: a method byte (0: a PNG of the
  8-bit greyscale plane, the image's width and height; 1: one byte, the
  value of every pixel), then its bytes.

Every length is checked against the bytes that are there before anything is
sliced or decoded; every refusal is one :class:`CaeError` line.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from dataclasses import dataclass, field

import numpy as np

from cae_compress.errors import CaeError

VERSION = 4
CHUNK_HEAD = struct.Struct("<I4s")  # data length, type
CHUNK_CRC = struct.Struct("<I")
CHUNK_OVERHEAD = CHUNK_HEAD.size + CHUNK_CRC.size  # 12
MAX_CHUNKS = 64

IMAGE = b"IMAG"
ICC = b"iccp"
EXIF = b"exif"
XMP = b"xmpd"
ALPHA = b"alph"
KNOWN = (IMAGE, ICC, EXIF, XMP, ALPHA)
METADATA = {ICC: "icc_profile", EXIF: "exif", XMP: "xmp"}  # chunk -> the key of Pillow's ``info``

ALPHA_PNG = 0  # alph's method byte: a PNG of the plane
ALPHA_CONSTANT = 1  # alph's method byte: one value (the next byte) for every pixel, e.g. an opaque RGBA image
EXIF_PREFIX = b"Exif\x00\x00"  # JPEG's APP1 prefix, which Pillow's info["exif"] carries; not stored


@dataclass(frozen=True)
class Extras:
    """What a version 4 file carries beside the image: metadata bytes, the coded alpha plane, chunks skipped."""

    icc_profile: bytes | None = None
    exif: bytes | None = None  # a TIFF stream
    xmp: bytes | None = None
    alpha: bytes | None = field(default=None, repr=False)  # the alph chunk's data (method byte, then the coded plane)
    skipped: tuple[str, ...] = field(default=())  # ancillary chunks this reader does not know, by type

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.icc_profile, self.exif, self.xmp, self.alpha))

    def info(self) -> dict:
        """The metadata as Pillow's ``info`` holds it: ``icc_profile``, ``exif`` (with ``Exif\\0\\0``, as every Pillow saver takes it), ``xmp``."""
        out = {}
        if self.icc_profile is not None:
            out["icc_profile"] = self.icc_profile
        if self.exif is not None:
            out["exif"] = EXIF_PREFIX + self.exif
        if self.xmp is not None:
            out["xmp"] = self.xmp
        return out

    def chunk_names(self) -> list[str]:
        """The chunks beside the image, by what they hold (for ``cae info``)."""
        names = [n for n, v in (("icc", self.icc_profile), ("exif", self.exif), ("xmp", self.xmp), ("alpha", self.alpha)) if v is not None]
        return names + [f"{t} (unknown, skipped)" for t in self.skipped]


def chunk(kind: bytes, data: bytes) -> bytes:
    """One chunk's bytes: length, type, data, CRC-32 of type and data."""
    return CHUNK_HEAD.pack(len(data), kind) + data + CHUNK_CRC.pack(zlib.crc32(data, zlib.crc32(kind)) & 0xFFFFFFFF)


def pack_chunks(layout: int, layout_payload: bytes, extras: Extras) -> bytes:
    """The chunks of a version 4 file: ``IMAG`` (the version ``layout`` payload), then metadata and alpha."""
    parts = [chunk(IMAGE, bytes([layout]) + bytes(layout_payload))]
    for kind, value in ((ICC, extras.icc_profile), (EXIF, extras.exif), (XMP, extras.xmp), (ALPHA, extras.alpha)):
        if value is not None:
            parts.append(chunk(kind, bytes(value)))
    return b"".join(parts)


def _type_name(kind: bytes) -> str:
    return kind.decode("ascii", "backslashreplace")


def read_chunks(payload: memoryview, label: str) -> tuple[int, memoryview, Extras]:
    """The layout, the layout's payload and the extras of a version 4 file's chunks (everything after the header), checked."""
    pos, seen, values, skipped = 0, [], {}, []
    while pos < len(payload):
        if len(seen) >= MAX_CHUNKS:
            raise CaeError(f"{label}: more than {MAX_CHUNKS} chunks")
        if pos + CHUNK_HEAD.size > len(payload):
            raise CaeError(f"{label}: truncated chunk at byte {76 + pos}")
        length, kind = CHUNK_HEAD.unpack_from(payload, pos)
        if not all(65 <= b <= 90 or 97 <= b <= 122 for b in kind):
            raise CaeError(f"{label}: corrupt chunk type {kind!r} at byte {76 + pos}")
        end = pos + CHUNK_HEAD.size + length
        if end + CHUNK_CRC.size > len(payload):
            raise CaeError(f"{label}: chunk '{_type_name(kind)}' of {length} bytes runs past the end of the file")
        data = payload[pos + CHUNK_HEAD.size : end]
        (crc,) = CHUNK_CRC.unpack_from(payload, end)
        if zlib.crc32(data, zlib.crc32(kind)) & 0xFFFFFFFF != crc:
            raise CaeError(f"{label}: checksum mismatch in chunk '{_type_name(kind)}', the file is corrupted")
        if not seen and kind != IMAGE:
            raise CaeError(f"{label}: the first chunk is '{_type_name(kind)}', not the image ('IMAG')")
        if kind in KNOWN:
            if kind in values:
                raise CaeError(f"{label}: two '{_type_name(kind)}' chunks")
            values[kind] = data
        elif kind[0] < 97:  # upper case: critical
            raise CaeError(f"{label}: critical chunk '{_type_name(kind)}' is unknown to this cae; upgrade cae_compress")
        else:
            skipped.append(_type_name(kind))
        seen.append(kind)
        pos = end + CHUNK_CRC.size
    if IMAGE not in values:
        raise CaeError(f"{label}: no image chunk ('IMAG')")
    image = values[IMAGE]
    if len(image) < 1 or image[0] not in (1, 2, 3):
        raise CaeError(f"{label}: unknown image layout {image[0] if len(image) else '(none)'} in chunk 'IMAG'")
    alpha = values.get(ALPHA)
    if alpha is not None and (len(alpha) < 1 or alpha[0] not in (ALPHA_PNG, ALPHA_CONSTANT)):
        raise CaeError(f"{label}: unknown alpha coding {alpha[0] if len(alpha) else '(none)'} in chunk 'alph'")
    if alpha is not None and alpha[0] == ALPHA_CONSTANT and len(alpha) != 2:
        raise CaeError(f"{label}: chunk 'alph' of one alpha value holds {len(alpha) - 1} bytes, not 1")
    exif = values.get(EXIF)
    extras = Extras(
        icc_profile=bytes(values[ICC]) if ICC in values else None, exif=bytes(exif) if exif is not None else None,
        xmp=bytes(values[XMP]) if XMP in values else None, alpha=bytes(alpha) if alpha is not None else None, skipped=tuple(skipped),
    )
    return image[0], image[1:], extras


# ------------------------------------------------------------------------- alpha
def encode_alpha(plane: np.ndarray) -> bytes:
    """The ``alph`` chunk's data of an (H, W) uint8 alpha plane: method 1 (its one value) where every pixel has one, else method 0, a PNG (Pillow, level 9) of the plane."""
    from PIL import Image

    if plane.size and (plane == plane.flat[0]).all():
        return bytes([ALPHA_CONSTANT, int(plane.flat[0])])
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(plane, dtype=np.uint8)).save(buf, format="PNG", optimize=True)  # 2-D uint8: mode L
    return bytes([ALPHA_PNG]) + buf.getvalue()


def decode_alpha(data: bytes, width: int, height: int, label: str) -> np.ndarray:
    """The (H, W) uint8 alpha plane of an ``alph`` chunk's data, checked to be an 8-bit plane of the image's size before it is decoded."""
    from PIL import Image

    if data[0] == ALPHA_CONSTANT:
        return np.full((height, width), data[1], np.uint8)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data[1:]), formats=["PNG"]) as im:
                if im.size != (width, height) or im.mode != "L":
                    raise CaeError(f"{label}: alpha plane is {im.size[0]}x{im.size[1]} {im.mode}, the image {width}x{height}")
                im.load()
                plane = np.asarray(im, dtype=np.uint8)
    except CaeError:
        raise
    except Image.UnidentifiedImageError:
        raise CaeError(f"{label}: corrupt alpha plane (not a PNG)") from None
    except Exception as exc:  # Pillow raises many kinds for bad data
        raise CaeError(f"{label}: corrupt alpha plane ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    return plane


# ------------------------------------------------------------------------- EXIF
def exif_tiff(exif: bytes | None) -> bytes | None:
    """EXIF as the ``exif`` chunk stores it: the TIFF stream, without JPEG's ``Exif\\0\\0`` prefix; None if empty."""
    if not exif:
        return None
    exif = bytes(exif)
    return exif[len(EXIF_PREFIX) :] if exif.startswith(EXIF_PREFIX) else exif


def exif_orientation(tiff: bytes) -> tuple[int, int | None]:
    """The byte offset of IFD0's Orientation value in a TIFF stream and the value; (-1, None) where there is none."""
    if len(tiff) < 8 or tiff[:4] not in (b"II*\0", b"MM\0*"):
        return -1, None
    e = "<" if tiff[:2] == b"II" else ">"
    (ifd,) = struct.unpack_from(e + "I", tiff, 4)
    if ifd + 2 > len(tiff):
        return -1, None
    (n,) = struct.unpack_from(e + "H", tiff, ifd)
    for i in range(n):
        at = ifd + 2 + 12 * i
        if at + 12 > len(tiff):
            break
        tag, kind, count = struct.unpack_from(e + "HHI", tiff, at)
        if tag == 0x0112 and kind == 3 and count == 1:
            return at + 8, struct.unpack_from(e + "H", tiff, at + 8)[0]
    return -1, None


def reset_orientation(tiff: bytes) -> bytes:
    """The TIFF stream with IFD0's Orientation set to 1 (the pixels are already turned), every other byte as it was."""
    at, value = exif_orientation(tiff)
    if at < 0 or value == 1:
        return tiff
    e = "<" if tiff[:2] == b"II" else ">"
    return tiff[:at] + struct.pack(e + "H", 1) + tiff[at + 2 :]


def reset_xmp_orientation(xmp: bytes) -> bytes:
    """An XMP packet with ``tiff:Orientation`` set to 1, as for EXIF (both spellings: attribute and element)."""
    import re

    xmp = re.sub(rb'(tiff:Orientation=["\'])[2-8](["\'])', rb"\g<1>1\g<2>", xmp)
    return re.sub(rb"(<tiff:Orientation>)[2-8](</tiff:Orientation>)", rb"\g<1>1\g<2>", xmp)
