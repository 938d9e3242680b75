"""The hyperprior codec: codes and hyper-codes, range-coded in bands, ``.cae`` version 3.

``compress(pixels, quality) -> (streams, record)`` and ``decompress(streams,
record, height, width) -> pixels``.  The streams are the range-coded
hyper-codes and codes; the record is the few bytes the decoder needs besides
them (the quality, a CRC-32 of every decoded symbol, so that a desync seen
anywhere becomes one clear error instead of a garbage image, and the band
height).

The codec is put together from parts:

* three networks, on either backend: ``encoder`` (analysis), ``hyper_encoder``
  (hyper-analysis) and ``decoder`` (synthesis), run on windows of nearly equal size, each with :data:`MARGIN`
  positions of context, which covers their receptive fields, and at most
  :data:`WINDOW_AREA` code positions in all (``layouts.window_grid``): the
  synthesis gives the pixels of the whole image, bit for bit, with no seams,
  in memory bounded by the window (the analysis too, but for its int8 head
  on LiteRT, whose activations are quantized with one range per window);
* the per-channel gains of every rate anchor, mixed for the qualities in between;
* the hyper-codes' entropy model: per-channel integer tables
  (``entropy_models.tables``);
* the codes' entropy model, given the hyper-codes: a latent part
  (``cae_compress.latent``, the interface ``latent.base.LatentPart``) that
  derives each code's parameters from the hyper-codes and codes the symbols:
  :class:`~cae_compress.latent.mean_scale.MeanScale` here (a mean and an
  exact integer scale index per value, the Gaussian conditional of
  ``entropy_models.gaussian``, the means from its own network
  ``hyper_mean``); the registry names another for a context model
  (``latent.channel_context.ChannelContext``), given to the codec as
  ``latent=``, and adds the part's networks to the codec's.

The gains, the integer scale network and the integer tables are numpy and
integers, stored in ``NAME.hyper.npz`` at export and the same for both
backends, so the symbols and their tables never depend on the backend.  The
codes are coded in bands of :data:`BAND` hyper-code rows (full width, top to
bottom), each band's parameters derived from its hyper-codes with
:data:`HYPER_MARGIN` rows of context, so the decoder holds a few bands of
codes at a time, not the whole image's (files of release 0.2.0, whose 5-byte
record says the codes were grouped by scale over the whole image, decode as
one band of every row).
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass

import constriction
import numpy as np

from cae_compress.codecs.base import Codec
from cae_compress.codecs.layouts import window_grid
from cae_compress.entropy_models.tables import Tables, decode_symbols, encode_symbols
from cae_compress.errors import CaeError
from cae_compress.latent.base import LatentPart
from cae_compress.latent.mean_scale import MeanScale

STRIDE = 16  # pixels per code position along each side
PAD = 64  # images are padded (edge pixels repeated) to a multiple of this: one hyper-code position
WINDOW_AREA = 600  # code positions per window with its context at most (a 12 MP photo: windows of 23x25)
MARGIN = 2  # code positions of context around each window (32 pixels: the synthesis reaches 1.9 positions, the analysis 1.9; models.receptive measures them, tests check every architecture)
HYPER_STRIDE = PAD // STRIDE  # code positions per hyper-code position along each side
BAND = 12  # hyper-code rows per band of the code stream (48 code rows), written by the encoder into the record
HYPER_MARGIN = 3  # hyper-code rows of context for a band's means and scales (the hyper-synthesis sees < 3 rows either side)
DEFAULT_QUALITY = 50
# cae encode --effort 1-9: gradient steps of encode-time refinement per window (cae_compress.models.refine); 1 is a plain encode
EFFORT_STEPS = (0, 10, 20, 30, 45, 60, 90, 130, 200)
RECORD = struct.Struct("<BIB")  # quality, CRC-32 of the symbols, band height in hyper-code rows
WHOLE_RECORD = struct.Struct("<BI")  # release 0.2.0: quality, CRC-32; codes grouped by scale over the whole image
PARAMS = "hyper"  # the arrays beside the weights: NAME.hyper.npz


def quality_position(quality: float, anchors: int) -> tuple[int, float]:
    """Quality 0-100 as (anchor k, fraction f): the gains are those of anchor k and k+1, mixed by f in the log domain."""
    if not 0 <= quality <= 100:
        raise CaeError(f"quality {quality} is out of range (0-100)")
    t = quality / 100.0 * (anchors - 1)
    k = min(int(t), anchors - 2)
    return k, t - k


def padded_shape(height: int, width: int) -> tuple[int, int]:
    """The image size the networks see: each side padded up to a multiple of :data:`PAD`."""
    return -(-height // PAD) * PAD, -(-width // PAD) * PAD


def _windows(rows: int, cols: int) -> tuple[list, list]:
    return window_grid(rows, cols, WINDOW_AREA, MARGIN)


def _crc(symbols: np.ndarray, crc: int = 0) -> int:
    """CRC-32 of int32 symbols (LE, raster order), continuing ``crc``."""
    return zlib.crc32(np.ascontiguousarray(symbols, "<i4").tobytes(), crc) & 0xFFFFFFFF


@dataclass
class Analysis:
    """An image as the analysis saw it, before any quality applies: the padded pixels and the codes without gains."""

    x: np.ndarray
    y: np.ndarray


class HyperpriorCodec(Codec):
    """The mean-scale hyperprior (``hyperprior``): every rate in one model, version 3 files."""

    version = 3
    entropy_coded = True
    reads = (3,)
    networks = ("encoder", "hyper_encoder", "decoder")  # and the latent part's (MeanScale: hyper_mean), added by the registry
    optional_networks = ("fast_decoder",)  # a cheaper synthesis of the same codes, where the model has one (decompress(..., fast=True))
    latent_part: type[LatentPart] = MeanScale  # the latent part unless the registry names another (latent=)
    variable_rate = True
    max_effort = len(EFFORT_STEPS)
    options = ("refine", "analysis")

    def __init__(self, nets, meta, entropy=None, *, latent: type[LatentPart] | None = None, **identity):
        super().__init__(nets, meta, entropy, **identity)
        if entropy is None:
            raise CaeError(f"{self.name}: no hyperprior parameters; run 'cae export'")
        try:
            self.gain = np.asarray(entropy["gain"], np.float32)
            self.inverse_gain = np.asarray(entropy["inverse_gain"], np.float32)
            self.hyper = Tables(json.loads(str(entropy["z_tables"])))
            self.latent = (latent or self.latent_part).from_export(nets, entropy, self.code_length)
            self.fast_inverse_gain = np.asarray(entropy["fast_inverse_gain"], np.float32) if "fast_inverse_gain" in entropy else None
            self.default_quality = int(meta.get("default_quality", DEFAULT_QUALITY))
        except (KeyError, ValueError, TypeError) as exc:
            raise CaeError(f"unreadable hyperprior parameters ({exc})") from None
        if not 0 <= self.default_quality <= 100:
            raise CaeError(f"{self.name}: default quality {self.default_quality} is out of range")

    @property
    def fast(self) -> bool:
        """Whether this model has a fast synthesis here (``decompress(..., fast=True)``; ``cae decode --fast``)."""
        return "fast_decoder" in self.nets and self.fast_inverse_gain is not None

    # ------------------------------------------------------------------ parts
    def gains(self, quality: float) -> tuple[np.ndarray, np.ndarray]:
        """The gain and inverse gain of ``quality``: the two nearest anchors' mixed in the log domain."""
        k, f = quality_position(quality, len(self.gain))
        return _mix(self.gain, k, f), _mix(self.inverse_gain, k, f)

    def progress_steps(self, height: int, width: int) -> int:
        """The windows of the analysis (encoding) and of the synthesis (decoding): one ``progress(1)`` each."""
        ph, pw = padded_shape(height, width)
        row_spans, col_spans = _windows(ph // STRIDE, pw // STRIDE)
        return len(row_spans) * len(col_spans)

    def _analysis(self, x: np.ndarray, progress=None) -> np.ndarray:
        """Codes of the padded uint8 image ``x``, window by window (each window made float 0-1 only when it runs)."""
        rows, cols = x.shape[0] // STRIDE, x.shape[1] // STRIDE
        y = None
        row_spans, col_spans = _windows(rows, cols)
        for r0, r1, rl, rh in row_spans:
            for c0, c1, cl, ch in col_spans:
                window = x[None, rl * STRIDE : rh * STRIDE, cl * STRIDE : ch * STRIDE].astype(np.float32) / np.float32(255.0)
                part = np.asarray(self.nets["encoder"](window))[0]
                if y is None:
                    y = np.empty((rows, cols, part.shape[-1]), np.float32)
                y[r0:r1, c0:c1] = part[r0 - rl : r1 - rl, c0 - cl : c1 - cl]
                if progress is not None:
                    progress(1)
        return y

    def _synthesis(self, y_rows, rows: int, cols: int, progress=None, network: str = "decoder") -> np.ndarray:
        """The image of ``rows`` x ``cols`` code positions; ``y_rows(a, b)`` gives the dequantized codes of rows a to b, asked in increasing order.

        ``network``: the synthesis that runs (``decoder``, or ``fast_decoder``: the same windows, fewer channels).
        """
        out = np.empty((rows * STRIDE, cols * STRIDE, 3), np.uint8)
        row_spans, col_spans = _windows(rows, cols)
        for r0, r1, rl, rh in row_spans:
            y = y_rows(rl, rh)
            for c0, c1, cl, ch in col_spans:
                part = np.asarray(self.nets[network](y[None, :, cl:ch]))[0]
                part = part[(r0 - rl) * STRIDE : (r1 - rl) * STRIDE, (c0 - cl) * STRIDE : (c1 - cl) * STRIDE]
                out[r0 * STRIDE : r1 * STRIDE, c0 * STRIDE : c1 * STRIDE] = np.clip(np.rint(part * 255.0), 0, 255).astype(np.uint8)
                if progress is not None:
                    progress(1)
        return out

    def _bands(self, z_symbols: np.ndarray, band: int):
        """Per band of ``band`` hyper-code rows, top to bottom: (z0, z1, the latent part's parameters of its code rows).

        Each band's parameters see :data:`HYPER_MARGIN` rows of hyper-codes
        beyond it, more than the hyper-synthesis' receptive field, so the
        scale indices are exactly those of the whole image.
        """
        zh = len(z_symbols)
        for z0 in range(0, zh, band):
            z1 = min(zh, z0 + band)
            lo, hi = max(0, z0 - HYPER_MARGIN), min(zh, z1 + HYPER_MARGIN)
            params = self.latent.parameters(z_symbols[lo:hi])
            a, b = (z0 - lo) * HYPER_STRIDE, (z1 - lo) * HYPER_STRIDE
            yield z0, z1, tuple(p[a:b] for p in params)

    # --------------------------------------------------------------- protocol
    def analyse(self, pixels: np.ndarray, progress=None) -> Analysis:
        """The padded image (uint8, edge pixels repeated) and its codes before gains: what every quality's file starts from."""
        h, w, _ = pixels.shape
        ph, pw = padded_shape(h, w)
        x = np.pad(pixels, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
        return Analysis(x, self._analysis(x, progress))

    def compress(self, pixels, quality=None, *, progress=None, refine=None, analysis: Analysis | None = None):
        """The streams and record of an (H, W, 3) uint8 image.

        ``analysis``, if given, is :meth:`analyse`'s result for these pixels
        (``--bpp`` tries several qualities of one analysis); ``refine(x, y,
        z, quality) -> (y, z)``, if given, changes the codes before they are
        rounded and coded (``cae encode --effort``).
        """
        quality = self.default_quality if quality is None else quality
        a = analysis if analysis is not None else self.analyse(pixels, progress)
        gain, _ = self.gains(quality)
        y = a.y * gain if analysis is not None else np.multiply(a.y, gain, out=a.y)  # an analysis of its own is gained in place
        z = np.asarray(self.nets["hyper_encoder"](y[None]))[0]
        if refine is not None:
            y, z = refine(a.x, y, z, quality)
        return self.code(y, z, quality)

    def code(self, y: np.ndarray, z: np.ndarray, quality: float, band: int = BAND) -> tuple[list[bytes], bytes]:
        """Round and entropy-code codes ``y`` and hyper-codes ``z``, in bands of ``band`` hyper-code rows: the streams and the record."""
        z_symbols = self.hyper.clamp(np.rint(z).reshape(-1, z.shape[-1])).reshape(z.shape).astype(np.int32)
        z_stream = encode_symbols(z_symbols.reshape(-1, z.shape[-1]), self.hyper)
        crc = _crc(z_symbols)
        enc = constriction.stream.queue.RangeEncoder()
        state = self.latent.start()
        for z0, z1, params in self._bands(z_symbols, band):
            symbols = self.latent.encode(enc, y[z0 * HYPER_STRIDE : z1 * HYPER_STRIDE], params, state)
            crc = _crc(symbols, crc)
        record = RECORD.pack(int(round(quality)), crc, band)
        return [z_stream, enc.get_compressed().astype("<u4").tobytes()], record

    @classmethod
    def describe_record(cls, record) -> dict:
        if len(record) == RECORD.size:
            quality, crc, band = RECORD.unpack(record)
            return {"quality": quality, "symbols_crc32": f"{crc:08x}", "band_rows": band * PAD}
        if len(record) == WHOLE_RECORD.size:
            quality, crc = WHOLE_RECORD.unpack(record)
            return {"quality": quality, "symbols_crc32": f"{crc:08x}", "band_rows": "whole image (release 0.2.0)"}
        return {}

    def decompress(self, streams, record, height, width, label="<input>", progress=None, fast: bool = False):
        """The (height, width, 3) uint8 image of the streams and record made by :meth:`compress` (or by release 0.2.0).

        ``fast``: through the model's fast synthesis (:attr:`fast` says whether
        it has one): the same symbols, decoded and checked against the
        record's CRC-32 as always; only the synthesis that turns them into
        pixels is cheaper (and the image a little less faithful).
        """
        if fast and not self.fast:
            raise CaeError(f"{label}: model '{self.name}' has no fast synthesis here")
        if len(streams) != 2 or len(record) not in (RECORD.size, WHOLE_RECORD.size):
            raise CaeError(f"{label}: a hyperprior file holds 2 streams and a {RECORD.size}-byte record")
        ph, pw = padded_shape(height, width)
        zh, zw = ph // PAD, pw // PAD
        if len(record) == RECORD.size:
            quality, crc, band = RECORD.unpack(record)
            if band == 0:
                raise CaeError(f"{label}: corrupt record (band height 0)")
        else:  # 0.2.0: the codes of the whole image grouped by scale, that is, one band of every hyper-code row
            (quality, crc), band = WHOLE_RECORD.unpack(record), zh
        if quality > 100:
            raise CaeError(f"{label}: quality {quality} is out of range")
        z_symbols = decode_symbols(streams[0], zh * zw, self.hyper, label).reshape(zh, zw, -1)
        _, inverse = self.gains(quality)
        if fast:
            inverse = _mix(self.fast_inverse_gain, *quality_position(quality, len(self.fast_inverse_gain)))
        rows = _BandRows(self, _decoder(streams[1], label), z_symbols, band, inverse, label)
        image = self._synthesis(rows, ph // STRIDE, pw // STRIDE, progress, "fast_decoder" if fast else "decoder")
        rows.finish()
        if rows.crc != crc:
            raise CaeError(f"{label}: decoded symbols fail their checksum (corrupt file, or a decoder that differs from the encoder)")
        return image[:height, :width]


def _mix(gains: np.ndarray, k: int, f: float) -> np.ndarray:
    """The gains of anchors ``k`` and ``k + 1`` (logs, one row per anchor), mixed by ``f`` in the log domain."""
    return np.exp(gains[k] * (1 - f) + gains[k + 1] * f).astype(np.float32)


def _decoder(data: bytes, label: str):
    if len(data) % 4:
        raise CaeError(f"{label}: corrupt entropy-coded payload (length {len(data)} is not a multiple of 4)")
    return constriction.stream.queue.RangeDecoder(np.frombuffer(data, "<u4").astype(np.uint32))


class _BandRows:
    """Dequantized code rows of a banded stream, decoded band by band as the synthesis asks for them.

    Rows are asked in increasing order; bands wholly above the rows last
    asked are dropped, so a few bands are held at a time.
    """

    def __init__(self, codec: HyperpriorCodec, dec, z_symbols: np.ndarray, band: int, inverse_gain: np.ndarray, label: str):
        self.codec, self.dec, self.inverse_gain, self.label = codec, dec, inverse_gain, label
        self.crc = _crc(z_symbols)
        self.bands = codec._bands(z_symbols, band)
        self.state = codec.latent.start()
        self.held: list[tuple[int, np.ndarray]] = []  # (first code row, dequantized rows)
        self.end = 0  # code rows decoded so far

    def _next(self) -> bool:
        step = next(self.bands, None)
        if step is None:
            return False
        z0, z1, params = step
        symbols, y = self.codec.latent.decode(self.dec, params, self.label, self.state)
        self.crc = _crc(symbols, self.crc)
        self.held.append((z0 * HYPER_STRIDE, y * self.inverse_gain))
        self.end = z1 * HYPER_STRIDE
        return True

    def __call__(self, a: int, b: int) -> np.ndarray:
        while self.end < b and self._next():
            pass
        self.held = [(r, y) for r, y in self.held if r + len(y) > a]
        start = self.held[0][0]
        rows = self.held[0][1] if len(self.held) == 1 else np.concatenate([y for _, y in self.held])
        return rows[a - start : b - start]

    def finish(self) -> None:
        """Decode any band the synthesis did not need (none, for a well-formed file), so the checksum covers every symbol."""
        while self._next():
            pass
