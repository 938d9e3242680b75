"""Structure-aware fuzzing of the version 4 container: every mutated file decodes or is refused with one clear CaeError.

    nice -n 19 python benchmarks/fuzz_format.py [--cases 20000] [--seed 0] [--model cifar10-64]

Seeds are valid version 4 files (metadata, alpha of both methods, RGB and
grayscale, layouts 1 and 2 where the model is there); each case takes one,
splits it into its header and chunks, and mutates the structure: a chunk's
length (small steps, bounds, random), its type (letters, case, bytes that are
not letters), its data, its place (moved, dropped, duplicated), chunks added
(known, unknown ancillary, unknown critical), the count, header fields; CRCs
(chunk and header) and the header's payload length are repaired in most
cases, so that the parser is reached past its checksums, and left broken in
the rest.  A case passes when ``codec.decode`` returns an image or raises one
:class:`CaeError` whose message is one line naming the file; any other
exception, a case over 5 s or memory over 300 MB fails it.  The suite's
``tests/test_container.py`` runs the same mutations, bounded, through
hypothesis.

Measured (2026-12-05, 2 shared cores, ``nice -n 19``): 20,000 cases of
``cifar10-64`` files (layout 1), seed 0: 4,614 decoded, 15,386 refused with
one CaeError line, 0 failures, slowest 52 ms, peak 85 MB; seed 1: 4,669 /
15,331 / 0, slowest 111 ms, 65 MB; 20,000 cases of ``channel-context``
files (layout 3, the range decoder meeting mutated streams), seed 2: 4,454
decoded, 15,546 refused, 0 failures, slowest 514 ms, peak 153 MB, 229 s.
"""

from __future__ import annotations

import argparse
import random
import resource
import struct
import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cae_compress.io import container  # noqa: E402
from cae_compress.io import format as fmt  # noqa: E402

LETTERS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def split(data: bytes) -> tuple[bytearray, list[list[bytes]]]:
    """A valid version 4 file as its header and its chunks, [type, data] each."""
    head, chunks, pos = bytearray(data[: fmt.HEADER_SIZE]), [], fmt.HEADER_SIZE
    while pos < len(data):
        n, kind = container.CHUNK_HEAD.unpack_from(data, pos)
        chunks.append([kind, data[pos + 8 : pos + 8 + n]])
        pos += 12 + n
    return head, chunks


def join(head: bytearray, chunks: list[list[bytes]], fix_crc: bool = True, lengths: dict | None = None, fix_header: bool = True) -> bytes:
    """The file of ``head`` and ``chunks``: CRCs right unless ``fix_crc`` is False (then each is off by one), declared lengths from ``lengths`` (index -> value) where given."""
    parts = []
    for i, (kind, data) in enumerate(chunks):
        crc = zlib.crc32(data, zlib.crc32(kind)) & 0xFFFFFFFF
        n = (lengths or {}).get(i, len(data))
        parts.append(struct.pack("<I", n & 0xFFFFFFFF) + kind + data + struct.pack("<I", crc if fix_crc else crc ^ 1))
    body = b"".join(parts)
    head = bytearray(head)
    if fix_header:
        struct.pack_into("<Q", head, 64, len(body))
        struct.pack_into("<I", head, 72, zlib.crc32(bytes(head[:72])) & 0xFFFFFFFF)
    return bytes(head) + body


def _bytes(rng: random.Random, n: int) -> bytes:
    return bytes(rng.randrange(256) for _ in range(n))


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One structure-aware mutation of a valid version 4 file (see the module's docstring)."""
    head, chunks = split(data)
    lengths: dict = {}
    fix_crc, fix_header = rng.random() > 0.05, rng.random() > 0.05
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        i = rng.randrange(len(chunks))
        kind = rng.randrange(12)
        if kind == 0:  # a declared length: near the truth, at the bounds, or anything
            true = len(chunks[i][1])
            lengths[i] = rng.choice((true + rng.randint(-4, 4), 0, 0xFFFFFFFF, 0x7FFFFFFF, rng.randrange(1 << 32), true * 2 + 1))
        elif kind == 1:  # the type: another known one, a case flip, letters, not letters
            t = bytearray(chunks[i][0])
            how = rng.randrange(4)
            if how == 0:
                t = bytearray(rng.choice(container.KNOWN))
            elif how == 1:
                t[0] ^= 0x20
            elif how == 2:
                t = bytearray(bytes(rng.choice(LETTERS) for _ in range(4)))
            else:
                t[rng.randrange(4)] = rng.randrange(256)
            chunks[i][0] = bytes(t)
        elif kind == 2:  # the data: bytes changed, cut, or grown
            d = bytearray(chunks[i][1])
            how = rng.randrange(3)
            if how == 0 and d:
                for _ in range(rng.randint(1, 8)):
                    d[rng.randrange(len(d))] = rng.randrange(256)
            elif how == 1:
                d = d[: rng.randrange(len(d) + 1)]
            else:
                at = rng.randrange(len(d) + 1)
                d[at:at] = _bytes(rng, rng.randint(1, 64))
            chunks[i][1] = bytes(d)
        elif kind == 3:  # the image chunk's layout byte
            if chunks[i][1]:
                chunks[i][1] = bytes([rng.choice((0, 1, 2, 3, 4, 255))]) + chunks[i][1][1:]
        elif kind == 4:  # the alpha method, or its PNG's header
            for c in chunks:
                if c[0] == container.ALPHA and c[1]:
                    d = bytearray(c[1])
                    if rng.random() < 0.5:
                        d[0] = rng.choice((0, 1, 2, 255))
                    elif len(d) > 24:
                        struct.pack_into(">I", d, 1 + 16 + rng.choice((0, 4)), rng.choice((0, 1, 7, 1 << 20, 1 << 31)))
                    c[1] = bytes(d)
        elif kind == 5:  # moved
            c = chunks.pop(i)
            chunks.insert(rng.randrange(len(chunks) + 1), c)
        elif kind == 6 and len(chunks) > 1:  # dropped
            chunks.pop(i)
        elif kind == 7:  # duplicated
            chunks.insert(rng.randrange(len(chunks) + 1), list(chunks[i]))
        elif kind == 8:  # added: unknown ancillary, unknown critical, a known one
            t = rng.choice((b"zzzz", b"ZZZZ", b"tIME", b"Meta", rng.choice(container.KNOWN)))
            chunks.insert(rng.randrange(len(chunks) + 1), [t, _bytes(rng, rng.randint(0, 40))])
        elif kind == 9:  # many chunks
            chunks += [[b"pads", b""] for _ in range(rng.choice((10, 63, 64, 65, 200)))]
        elif kind == 10:  # a header field (the header CRC is repaired)
            at = rng.randrange(5, 72)
            head[at] = rng.randrange(256)
        else:  # cut short, or junk after
            out = join(head, chunks, fix_crc, lengths, fix_header)
            return out[: rng.randrange(len(out))] if rng.random() < 0.5 else out + _bytes(rng, rng.randint(1, 16))
    return join(head, chunks, fix_crc, lengths, fix_header)


def seeds(model) -> list[bytes]:
    """Valid version 4 files of ``model``: metadata and alpha in several combinations, RGB and grayscale."""
    import numpy as np

    from cae_compress import codec

    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (20, 33, 4), dtype=np.uint8)
    opaque = rgba.copy()
    opaque[..., 3] = 255
    la = rng.integers(0, 256, (17, 9, 2), dtype=np.uint8)
    meta = container.Extras(icc_profile=b"\0\0\2\x0cICCPROFILE" * 3, exif=b"II*\0\x08\0\0\0\1\0\x12\x01\3\0\1\0\0\0\1\0\0\0\0\0\0\0", xmp=b"<x:xmpmeta/>")
    return [
        codec.encode(model, rgba),
        codec.encode(model, opaque, extras=meta),
        codec.encode(model, la, extras=container.Extras(icc_profile=b"icc")),
        codec.encode(model, rgba[..., :3], extras=meta),
    ]


def run_case(model, data: bytes, label: str = "fuzz.cae") -> str:
    """'image' or 'error' (one clear CaeError line); anything else raises."""
    from cae_compress import codec
    from cae_compress.errors import CaeError

    try:
        out = codec.decode(model, data, label)
    except CaeError as exc:
        assert exc.message.startswith(f"{label}: ") and "\n" not in exc.message, exc.message
        return "error"
    assert out.dtype.name == "uint8" and out.ndim == 3 and out.shape[2] in (1, 2, 3, 4), out.shape
    return "image"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="cifar10-64")
    parser.add_argument("--max-seconds", type=float, default=5.0)
    parser.add_argument("--max-mb", type=float, default=300.0)
    args = parser.parse_args()
    from cae_compress import zoo

    model = zoo.load(args.model)
    valid = seeds(model)
    rng = random.Random(args.seed)
    counts = {"image": 0, "error": 0}
    failures = []
    slowest = 0.0
    start = time.perf_counter()
    for i in range(args.cases):
        data = mutate(rng.choice(valid), rng)
        t = time.perf_counter()
        try:
            counts[run_case(model, data)] += 1
        except Exception as exc:  # noqa: BLE001  (a failure to report, with its bytes)
            failures.append((i, f"{type(exc).__name__}: {exc}"[:200]))
            Path(f"fuzz-failure-{i}.cae").write_bytes(data)
        took = time.perf_counter() - t
        slowest = max(slowest, took)
        if took > args.max_seconds:
            failures.append((i, f"took {took:.1f} s"))
            Path(f"fuzz-slow-{i}.cae").write_bytes(data)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.cases} cases in {time.perf_counter() - start:.0f} s: {counts['image']} decoded, {counts['error']} refused with one CaeError line, "
          f"{len(failures)} failures; slowest case {slowest * 1000:.0f} ms; peak memory {peak_mb:.0f} MB (whole process, model included)")
    for i, what in failures[:20]:
        print(f"  case {i}: {what}")
    if peak_mb > args.max_mb:
        print(f"peak memory {peak_mb:.0f} MB is over {args.max_mb:.0f} MB")
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
