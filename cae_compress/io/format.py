"""The ``.cae`` file: a fixed 76-byte header, then the payload of codes (versions 1-3) or chunks (version 4).

``docs/format.md`` documents every byte; this module is the one place that
reads and writes them.  Integers are little-endian; nothing is pickled.
Readers check, in this order: length, magic, version, CRC-32, then each field,
and refuse absurd dimensions before allocating anything.
"""

from __future__ import annotations

import lzma
import struct
import zlib
from dataclasses import dataclass, replace

import numpy as np

from cae_compress.errors import CaeError
from cae_compress.io import MAX_PIXELS, NAME_BYTES
from cae_compress.io import container
from cae_compress.io.container import Extras

MAGIC = b"\x89CAE"
VERSION = 4  # the newest version this module reads; files are written with the oldest that holds them
# Version 4 (cae_compress.io.container) holds a version 1-3 payload in its
# image chunk, and metadata and alpha in chunks of their own: written only
# where a file carries metadata or alpha, so that a plain image's file is
# the version 1-3 file it always was (and older readers read it).
HEADER = struct.Struct("<4sBBBBIIHHIff8s24sQI")
HEADER_SIZE = HEADER.size  # 76
assert HEADER_SIZE == 76

DTYPES = {0: "float32", 1: "float16", 2: "uint8", 3: "int"}
DTYPE_CODES = {v: k for k, v in DTYPES.items()}
COMPRESSIONS = {0: "none", 1: "zlib", 2: "lzma", 3: "range"}
COMPRESSION_CODES = {v: k for k, v in COMPRESSIONS.items()}
# Versions 2 and 3 hold entropy-coded files: codes rounded to integers ("int")
# and range-coded ("range", see cae_compress.entropy_models).  The two go
# together, and only in those versions.
ENTROPY_CODED = ("int", "range")

MAX_SIDE = 1 << 20
MAX_TILE_SIDE = 4096
MAX_CODE_LENGTH = 1 << 24
MAX_PAYLOAD = 1 << 32
MAX_STREAMS = 8  # version 3: streams in one file, at most
MAX_RECORD = 255  # version 3: bytes of the model's record, at most
STREAM_LENGTH = struct.Struct("<I")


@dataclass(frozen=True)
class Header:
    """What the header of a ``.cae`` file says; see ``docs/format.md``."""

    width: int
    height: int
    channels: int
    tile_height: int
    tile_width: int
    code_length: int
    dtype: str = "float32"
    compression: str = "none"
    scale: float = 1.0
    offset: float = 0.0
    fingerprint: bytes = b"\0" * 8
    model_name: str = ""
    version: int = 1
    layout: int = 0  # version 4: the version (1-3) of its image chunk's payload; 0 where not read (or before version 4)

    @property
    def tiles(self) -> tuple[int, int]:
        """Rows and columns of tiles covering the image."""
        return -(-self.height // self.tile_height), -(-self.width // self.tile_width)

    @property
    def n_tiles(self) -> int:
        rows, cols = self.tiles
        return rows * cols

    @property
    def codes_version(self) -> int:
        """The version whose payload holds the codes: ``version``, or for a version 4 file its image chunk's layout."""
        return self.layout if self.version >= container.VERSION else self.version

    @property
    def entropy_coded(self) -> bool:
        return self.dtype == "int"

    @property
    def streams(self) -> bool:
        """Whether the payload is a model's record and streams (version 3)."""
        return self.codes_version >= 3

    @property
    def raw_payload_size(self) -> int:
        """Bytes of the codes once decompressed (4 per integer code for entropy-coded files)."""
        itemsize = 4 if self.entropy_coded else np.dtype(self.dtype).itemsize
        return self.n_tiles * self.code_length * itemsize


def header_name(name: str) -> str:
    """A model's name as the header stores it: ASCII, at most :data:`NAME_BYTES` bytes."""
    return name.encode("ascii", "replace")[:NAME_BYTES].decode("ascii")


@dataclass(frozen=True)
class FloatRecord:
    """How a version 1 file stores its float codes (kept in the header): dtype, payload compression, and uint8's scale and offset."""

    dtype: str
    compression: str
    scale: float = 1.0
    offset: float = 0.0


def pack_file(header: Header, record, streams: list[bytes], extras: Extras | None = None) -> bytes:
    """A whole file of ``header.version``: what a codec's ``compress`` gave, in the container.

    Version 1: ``record`` is a :class:`FloatRecord` (its fields go to the
    header) and the one stream is the payload; version 2: no record, the one
    stream is the range coder's bytes; version 3: the record and the streams.
    With ``extras`` (metadata or alpha), a version 4 file whose image chunk
    holds that payload.
    """
    if header.version == 1:
        r = record
        header, payload = replace(header, dtype=r.dtype, compression=r.compression, scale=r.scale, offset=r.offset), bytes(streams[0])
    elif header.version == 2:
        header, payload = replace(header, dtype="int", compression="range"), bytes(streams[0])
    else:
        header, payload = replace(header, dtype="int", compression="range", version=3), streams_payload(record, streams)
    if extras:
        return _assemble(header, container.pack_chunks(header.version, payload, extras), version=container.VERSION)
    return _assemble(header, payload, version=header.version)


def unpack_file(data: bytes, label: str = "<input>") -> tuple[Header, object, list[bytes]]:
    """The header, record and streams of a file of any version (checked): what a codec's ``decompress`` takes."""
    return unpack_all(data, label)[:3]


def unpack_all(data: bytes, label: str = "<input>") -> tuple[Header, object, list[bytes], Extras]:
    """The header, record, streams and extras (metadata, alpha: empty before version 4) of a file of any version, checked."""
    header, payload, extras = _parse(data, label, whole=True)
    if header.streams:
        record, streams = _split_streams(payload, label)
        return header, record, streams, extras
    if header.entropy_coded:
        return header, b"", [bytes(payload)], extras
    return header, FloatRecord(header.dtype, header.compression, header.scale, header.offset), [bytes(payload)], extras


def compress_payload(raw: bytes, compression: str) -> bytes:
    """A version 1 payload: the stored codes' bytes, compressed."""
    if compression == "zlib":
        return zlib.compress(raw, 9)
    if compression == "lzma":
        return lzma.compress(raw, format=lzma.FORMAT_RAW, filters=_lzma_filters(len(raw), preset=9))
    return raw


def _lzma_filters(raw_size: int, preset: int | None = None) -> list[dict]:
    """LZMA2 with a dictionary just big enough for the payload (4 KiB to 64 MiB).

    A raw stream does not record its dictionary size, so both sides derive it
    from the uncompressed size; a small dictionary also keeps tiny files fast.
    """
    f = {"id": lzma.FILTER_LZMA2, "dict_size": min(max(raw_size, 1 << 12), 1 << 26)}
    if preset is not None:
        f["preset"] = preset
    return [f]


def _crc(header_without_crc: bytes, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(header_without_crc)) & 0xFFFFFFFF


def pack(header: Header, codes: np.ndarray | bytes) -> bytes:
    """Serialize ``codes`` into file bytes.

    ``codes`` is an array (n_tiles, code_length) already in ``header.dtype``,
    or, for an entropy-coded header, the coder's bytes.
    """
    if header.entropy_coded != (header.compression == "range"):
        raise ValueError("integer codes go with the range coder, and only they do")
    if header.entropy_coded:
        return _assemble(header, bytes(codes))
    raw = np.ascontiguousarray(codes, dtype=np.dtype(header.dtype).newbyteorder("<")).tobytes()
    if len(raw) != header.raw_payload_size:
        raise ValueError(f"codes hold {len(raw)} bytes, the header says {header.raw_payload_size}")
    return _assemble(header, compress_payload(raw, header.compression))


def streams_payload(record: bytes, streams: list[bytes]) -> bytes:
    """A version 3 payload: record length (u8), record, stream count (u8), then per stream its length (u32 LE) and bytes."""
    if len(record) > MAX_RECORD or not 0 < len(streams) <= MAX_STREAMS:
        raise ValueError("record or stream count out of range")
    parts = [bytes([len(record)]), bytes(record), bytes([len(streams)])]
    for s in streams:
        parts += [STREAM_LENGTH.pack(len(s)), bytes(s)]
    return b"".join(parts)


def pack_streams(header: Header, record: bytes, streams: list[bytes]) -> bytes:
    """A version 3 file: the header, then the model's record and its length-prefixed streams."""
    return _assemble(header, streams_payload(record, streams), version=3)


def unpack_streams(data: bytes, label: str = "<input>") -> tuple[Header, bytes, list[bytes]]:
    """The header, record and streams of a version 3 file, or of a version 4 file of layout 3 (checked: lengths must add up exactly)."""
    header, payload, _ = _parse(data, label, whole=True)
    if not header.streams:
        raise CaeError(f"{label}: a version {header.codes_version} file has no streams")
    return (header, *_split_streams(payload, label))


def _split_streams(payload: memoryview, label: str) -> tuple[bytes, list[bytes]]:
    bad = CaeError(f"{label}: corrupt stream layout")
    if len(payload) < 2 or payload[0] + 2 > len(payload):
        raise bad
    n_record = payload[0]
    record = bytes(payload[1 : 1 + n_record])
    pos = 1 + n_record
    count = payload[pos]
    pos += 1
    if not 0 < count <= MAX_STREAMS:
        raise bad
    streams = []
    for _ in range(count):
        if pos + 4 > len(payload):
            raise bad
        (n,) = STREAM_LENGTH.unpack_from(payload, pos)
        pos += 4
        if pos + n > len(payload):
            raise bad
        streams.append(bytes(payload[pos : pos + n]))
        pos += n
    if pos != len(payload):
        raise CaeError(f"{label}: {len(payload) - pos} trailing bytes after the streams")
    return record, streams


def _assemble(header: Header, payload: bytes, version: int | None = None) -> bytes:
    """Header and payload; the CRC-32 covers both (versions 1-3) or the header alone (version 4: each chunk has its own)."""
    version = version or (2 if header.entropy_coded else header.version)
    name = header_name(header.model_name).encode("ascii")
    fields = (
        MAGIC, version, DTYPE_CODES[header.dtype], COMPRESSION_CODES[header.compression], header.channels,
        header.width, header.height, header.tile_height, header.tile_width, header.code_length,
        header.scale, header.offset, header.fingerprint, name, len(payload),
    )
    head = HEADER.pack(*fields, 0)[:-4]
    crc = zlib.crc32(head) & 0xFFFFFFFF if version >= container.VERSION else _crc(head, payload)
    return head + struct.pack("<I", crc) + payload


def inflate(kind: str, payload: bytes, expected: int, label: str) -> bytes:
    """Inflate at most ``expected`` bytes: a decompression bomb stops there."""
    try:
        if kind == "zlib":
            d = zlib.decompressobj()
            raw = d.decompress(payload, expected)
            extra = d.decompress(d.unconsumed_tail, 1) if len(raw) == expected else b""
            complete = d.eof and not d.unused_data
        elif kind == "lzma":
            d = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=_lzma_filters(expected))
            raw = d.decompress(payload, max_length=expected)
            extra = d.decompress(b"", max_length=1) if len(raw) == expected and not d.eof else b""
            complete = d.eof and not d.unused_data
        else:
            raw, extra, complete = payload, b"", True
    except (zlib.error, lzma.LZMAError, EOFError) as exc:
        raise CaeError(f"{label}: corrupt payload ({exc})") from None
    if extra:
        raise CaeError(f"{label}: payload inflates to more than the {expected} bytes of codes the header says")
    if len(raw) != expected or not complete:
        raise CaeError(f"{label}: payload holds {len(raw)} bytes of codes, the header says {expected}")
    return raw


def parse_header(data: bytes, label: str = "<input>", whole: bool = True) -> Header:
    """Check and read the header of ``data`` (the whole file): magic, version, CRC, then fields.

    With ``whole`` False, ``data`` may be the header alone (its first
    :data:`HEADER_SIZE` bytes): the length and CRC of the payload are not
    checked (``cae info`` on a file it does not read whole, Pillow's
    ``Image.open``; a version 4 header's own CRC is); decoding always reads
    and checks the whole file (for version 4: every chunk).
    """
    return _parse(data, label, whole)[0]


def parse_extras(data: bytes, label: str = "<input>") -> tuple[Header, Extras]:
    """The header and extras (metadata, alpha; empty before version 4) of a whole file, checked, without unpacking its codes."""
    header, _, extras = _parse(data, label, whole=True)
    return header, extras


def _parse(data: bytes, label: str, whole: bool) -> tuple[Header, memoryview | None, Extras]:
    """The header, the codes' payload (None unless ``whole``) and the extras of ``data``."""
    if len(data) == 0:
        raise CaeError(f"{label}: empty file")
    if len(data) < 4 or data[:4] != MAGIC:
        raise CaeError(f"{label}: not a .cae file (bad magic bytes)")
    if len(data) < 5:
        raise CaeError(f"{label}: truncated .cae file ({len(data)} bytes, the header alone is {HEADER_SIZE})")
    version = data[4]
    if version > VERSION:
        raise CaeError(f"{label}: .cae format version {version} is newer than this cae reads ({VERSION}); upgrade cae_compress")
    if version < 1:
        raise CaeError(f"{label}: unknown .cae format version {version}")
    if len(data) < HEADER_SIZE:
        raise CaeError(f"{label}: truncated .cae file ({len(data)} bytes, the header alone is {HEADER_SIZE})")
    (_, _, dtype, comp, channels, width, height, th, tw, code_length, scale, offset, fp, name, payload_len, crc) = HEADER.unpack_from(data)
    chunked = version >= container.VERSION
    if whole and HEADER_SIZE + payload_len != len(data):
        what = "truncated" if HEADER_SIZE + payload_len > len(data) else "has trailing bytes"
        raise CaeError(f"{label}: .cae file {what} ({len(data)} bytes, the header says {HEADER_SIZE + payload_len})")
    if chunked and zlib.crc32(memoryview(data)[: HEADER_SIZE - 4]) & 0xFFFFFFFF != crc:
        raise CaeError(f"{label}: checksum mismatch in the header, the file is corrupted")
    if whole and not chunked and _crc(data[: HEADER_SIZE - 4], data[HEADER_SIZE:]) != crc:
        raise CaeError(f"{label}: checksum mismatch, the file is corrupted")
    payload, extras, layout = None, Extras(), 0
    if whole:
        payload = memoryview(data)[HEADER_SIZE:]
        if chunked:
            layout, payload, extras = container.read_chunks(payload, label)
    codes = layout or version
    if dtype not in DTYPES:
        raise CaeError(f"{label}: unknown code dtype {dtype}")
    if comp not in COMPRESSIONS:
        raise CaeError(f"{label}: unknown payload compression {comp}")
    entropy = DTYPES[dtype] == "int"
    if entropy != (COMPRESSIONS[comp] == "range") or (codes < container.VERSION and ((entropy and codes < 2) or (codes >= 3 and not entropy))):
        where = f"a version {version} file" + (f" of layout {layout}" if layout else "")
        raise CaeError(f"{label}: code dtype '{DTYPES[dtype]}' does not go with compression '{COMPRESSIONS[comp]}' in {where}")
    if channels not in (1, 3):
        raise CaeError(f"{label}: unsupported channel count {channels}")
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE) or width * height > MAX_PIXELS:
        raise CaeError(f"{label}: declared size {width}x{height} is out of range (at most {MAX_PIXELS} pixels)")
    if not (0 < th <= MAX_TILE_SIDE and 0 < tw <= MAX_TILE_SIDE) or not 0 < code_length <= MAX_CODE_LENGTH:
        raise CaeError(f"{label}: declared tile {th}x{tw} or code length {code_length} is out of range")
    if not (np.isfinite(scale) and np.isfinite(offset)):
        raise CaeError(f"{label}: quantization scale/offset are not finite")
    header = Header(
        width=width, height=height, channels=channels, tile_height=th, tile_width=tw, code_length=code_length,
        dtype=DTYPES[dtype], compression=COMPRESSIONS[comp], scale=float(scale), offset=float(offset),
        fingerprint=fp, model_name=name.rstrip(b"\0").decode("ascii", "replace"), version=version, layout=layout,
    )
    if header.raw_payload_size > MAX_PAYLOAD:
        raise CaeError(f"{label}: declared payload of {header.raw_payload_size} bytes is out of range")
    return header, payload, extras


def unpack(data: bytes, label: str = "<input>") -> tuple[Header, np.ndarray | bytes]:
    """Parse a whole ``.cae`` file into its header and float32 codes (n_tiles, code_length).

    For an entropy-coded file the second item is the coder's bytes, which only
    the model's tables can turn into codes (``cae_compress.entropy_models``).
    """
    header, record, streams = unpack_file(data, label)
    if header.entropy_coded:
        return header, streams[0]
    return header, float_codes(record, streams[0], header.n_tiles, header.code_length, label)


def quantize(codes: np.ndarray, dtype: str) -> tuple[np.ndarray, float, float]:
    """Float codes as a version 1 file stores them: float32, float16, or uint8 with a scale and offset over the whole file."""
    if dtype == "float32":
        return codes.astype(np.float32), 1.0, 0.0
    if dtype == "float16":
        return codes.astype(np.float16), 1.0, 0.0
    if dtype == "uint8":
        lo, hi = float(codes.min()), float(codes.max())
        scale = float(np.float32((hi - lo) / 255.0)) or 1.0
        q = np.clip(np.rint((codes - np.float32(lo)) / np.float32(scale)), 0, 255).astype(np.uint8)
        return q, scale, float(np.float32(lo))
    raise CaeError(f"unknown code dtype '{dtype}' (choose from: {', '.join(d for d in DTYPE_CODES if d != 'int')})")


def float_codes(record: FloatRecord, payload: bytes, rows: int, code_length: int, label: str = "<input>") -> np.ndarray:
    """The float32 codes (rows, code_length) of a version 1 payload: inflated, dequantized, checked finite."""
    dtype = np.dtype(record.dtype).newbyteorder("<")
    raw = inflate(record.compression, payload, rows * code_length * dtype.itemsize, label)
    codes = np.frombuffer(raw, dtype=dtype).reshape(rows, code_length)
    if record.dtype == "uint8":
        values = codes.astype(np.float32) * np.float32(record.scale) + np.float32(record.offset)
    else:
        values = codes.astype(np.float32)
    if not np.all(np.isfinite(values)):
        raise CaeError(f"{label}: codes contain NaN or infinity")
    return values
