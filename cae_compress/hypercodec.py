"""Compress and decompress with a hyperprior model, on either backend (TensorFlow only in :func:`export`).

The model protocol: ``compress(pixels, quality) -> (streams, record)`` and
``decompress(streams, record, height, width) -> pixels``.  The streams are
the range-coded hyper-codes and codes; the record is the few bytes the
decoder needs besides them (the quality, and a CRC-32 of every decoded
symbol, so that a desync seen anywhere becomes one clear error instead of a
garbage image).  ``cae_compress.format`` stores both in a version 3 file.

What runs where:

* the four networks (analysis, hyper-analysis, hyper-synthesis of the means,
  synthesis) run on the backend: Keras models, or LiteRT files exported
  beside the ``.keras`` file;
* the gains, the integer scale network and the integer entropy tables are
  numpy and integers, stored in ``NAME.hyper.npz`` at export and the same for
  both backends, so the symbols and their tables never depend on the backend.

The analysis and synthesis run on windows of nearly equal size, each with
:data:`MARGIN` positions of context, which covers their receptive fields,
and at most :data:`WINDOW_AREA` code positions in all
(``layouts.window_grid``): the synthesis gives the pixels of the whole
image, bit for bit, with no seams, in memory bounded by the window (the
analysis too, but for its int8 head on LiteRT, whose activations are
quantized with one range per window).  The codes are entropy-coded in
bands of :data:`BAND` hyper-code rows (full width, top to bottom), each
band's means and scale indices derived from its hyper-codes with
:data:`HYPER_MARGIN` rows of context, so the decoder holds a few bands of
codes at a time, not the whole image's (files of release 0.2.0, whose
5-byte record says the codes were grouped by scale over the whole image,
still decode the old way).
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np

from cae_compress.entropy_models import gaussian
from cae_compress.coder import Tables, decode_symbols, encode_symbols
from cae_compress.errors import CaeError
from cae_compress.layouts import window_grid

STRIDE = 16  # pixels per code position along each side
PAD = 64  # images are padded (edge pixels repeated) to a multiple of this: one hyper-code position
WINDOW_AREA = 600  # code positions per window with its context at most (12 MP: 23x25, 368x400 pixels; synthesis buffers ~110 MB)
MARGIN = 2  # code positions of context around each window (32 pixels: the synthesis reaches 1.9 positions, the analysis 1.9)
HYPER_STRIDE = PAD // STRIDE  # code positions per hyper-code position along each side
BAND = 12  # hyper-code rows per band of the code stream (48 code rows), written by the encoder into the record
HYPER_MARGIN = 3  # hyper-code rows of context for a band's means and scales (the hyper-synthesis sees < 3 rows either side)
DEFAULT_QUALITY = 50
# cae encode --effort 1-9: gradient steps of encode-time refinement per window (cae_compress.refine); 1 is a plain encode
EFFORT_STEPS = (0, 10, 20, 30, 45, 60, 90, 130, 200)
DEFAULT_EFFORT = 1
RECORD = struct.Struct("<BIB")  # quality, CRC-32 of the symbols, band height in hyper-code rows
WHOLE_RECORD = struct.Struct("<BI")  # release 0.2.0: quality, CRC-32; codes grouped by scale over the whole image


def quality_position(quality: float, anchors: int) -> tuple[int, float]:
    """Quality 0-100 as (anchor k, fraction f): the gains are those of anchor k and k+1, mixed by f in the log domain."""
    if not 0 <= quality <= 100:
        raise CaeError(f"quality {quality} is out of range (0-100)")
    t = quality / 100.0 * (anchors - 1)
    k = min(int(t), anchors - 2)
    return k, t - k


def _windows(rows: int, cols: int) -> tuple[list, list]:
    return window_grid(rows, cols, WINDOW_AREA, MARGIN)


class HyperpriorCodec:
    """The numpy half of a hyperprior model plus its four networks (callables on float32 NHWC arrays)."""

    def __init__(self, nets: dict, params: dict):
        self.nets = nets
        try:
            self.gain = np.asarray(params["gain"], np.float32)
            self.inverse_gain = np.asarray(params["inverse_gain"], np.float32)
            self.scale_net = gaussian.IntegerScaleNet.from_arrays(params)
            halves = np.asarray(params["gaussian_half_ranges"], np.int64)
            flat = np.asarray(params["gaussian_frequencies"], np.int64)
            self.z_tables = Tables(json.loads(str(params["z_tables"])))
        except (KeyError, ValueError, TypeError) as exc:
            raise CaeError(f"unreadable hyperprior parameters ({exc})") from None
        self.channels = self.gain.shape[1]
        self.half_ranges = halves
        bounds = np.concatenate([[0], np.cumsum(2 * halves + 1)])
        if len(halves) != gaussian.LEVELS or bounds[-1] != len(flat):
            raise CaeError("unreadable hyperprior parameters (Gaussian tables)")
        freqs = [flat[bounds[i] : bounds[i + 1]] for i in range(len(halves))]
        total = 1 << gaussian.PRECISION
        if any(f.min() < 1 or int(f.sum()) != total for f in freqs):
            raise CaeError("unreadable hyperprior parameters (Gaussian tables must be positive and sum to 2**24)")
        self._probabilities = [f.astype(np.float64) / total for f in freqs]
        self._models = None

    # ------------------------------------------------------------------ parts
    def _gains(self, quality: float) -> tuple[np.ndarray, np.ndarray]:
        k, f = quality_position(quality, len(self.gain))
        mix = lambda g: np.exp(g[k] * (1 - f) + g[k + 1] * f).astype(np.float32)  # noqa: E731
        return mix(self.gain), mix(self.inverse_gain)

    def _models_by_level(self):
        if self._models is None:
            import constriction

            self._models = [constriction.stream.model.Categorical(p, perfect=False) for p in self._probabilities]
        return self._models

    def _analysis(self, x: np.ndarray, progress=None) -> np.ndarray:
        """Codes of the padded uint8 image ``x``, window by window (each window made float 0-1 only when it runs)."""
        rows, cols = x.shape[0] // STRIDE, x.shape[1] // STRIDE
        y = None
        row_spans, col_spans = _windows(rows, cols)
        for r0, r1, rl, rh in row_spans:
            for c0, c1, cl, ch in col_spans:
                window = x[None, rl * STRIDE : rh * STRIDE, cl * STRIDE : ch * STRIDE].astype(np.float32) / np.float32(255.0)
                part = np.asarray(self.nets["analysis"](window))[0]
                if y is None:
                    y = np.empty((rows, cols, part.shape[-1]), np.float32)
                y[r0:r1, c0:c1] = part[r0 - rl : r1 - rl, c0 - cl : c1 - cl]
                if progress is not None:
                    progress(1)
        return y

    def _synthesis(self, y_rows, rows: int, cols: int, progress=None) -> np.ndarray:
        """The image of ``rows`` x ``cols`` code positions; ``y_rows(a, b)`` gives the dequantized codes of rows a to b, asked in increasing order."""
        out = np.empty((rows * STRIDE, cols * STRIDE, 3), np.uint8)
        row_spans, col_spans = _windows(rows, cols)
        for r0, r1, rl, rh in row_spans:
            y = y_rows(rl, rh)
            for c0, c1, cl, ch in col_spans:
                part = np.asarray(self.nets["synthesis"](y[None, :, cl:ch]))[0]
                part = part[(r0 - rl) * STRIDE : (r1 - rl) * STRIDE, (c0 - cl) * STRIDE : (c1 - cl) * STRIDE]
                out[r0 * STRIDE : r1 * STRIDE, c0 * STRIDE : c1 * STRIDE] = np.clip(np.rint(part * 255.0), 0, 255).astype(np.uint8)
                if progress is not None:
                    progress(1)
        return out

    def _hyper(self, z_symbols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Means (float32) and scale indices (exact integers) of the codes, from the rounded hyper-codes."""
        z_hat = z_symbols.astype(np.float32)
        mean = np.asarray(self.nets["hyper_mean"](z_hat[None]))[0]
        return mean, self.scale_net(z_symbols)

    def _bands(self, z_symbols: np.ndarray, band: int):
        """Per band of ``band`` hyper-code rows, top to bottom: (z0, z1, means, scale indices) of its code rows.

        Each band's hyper-synthesis sees :data:`HYPER_MARGIN` rows of
        hyper-codes beyond it, more than its receptive field, so the scale
        indices are exactly those of the whole image.
        """
        zh = len(z_symbols)
        for z0 in range(0, zh, band):
            z1 = min(zh, z0 + band)
            lo, hi = max(0, z0 - HYPER_MARGIN), min(zh, z1 + HYPER_MARGIN)
            mean, index = self._hyper(z_symbols[lo:hi])
            a, b = (z0 - lo) * HYPER_STRIDE, (z1 - lo) * HYPER_STRIDE
            yield z0, z1, mean[a:b], index[a:b]

    # --------------------------------------------------------------- protocol
    def analyse(self, pixels: np.ndarray, quality: float = DEFAULT_QUALITY, progress=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The padded image (uint8, edge pixels repeated), its codes ``y`` (gained, not rounded) and hyper-codes ``z`` (not rounded)."""
        h, w, _ = pixels.shape
        ph, pw = -(-h // PAD) * PAD, -(-w // PAD) * PAD
        x = np.pad(pixels, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
        gain, _ = self._gains(quality)
        y = self._analysis(x, progress)
        y *= gain
        z = np.asarray(self.nets["hyper_analysis"](y[None]))[0]
        return x, y, z

    def compress(self, pixels: np.ndarray, quality: float = DEFAULT_QUALITY, progress=None, refine=None) -> tuple[list[bytes], bytes]:
        """The streams and record of an (H, W, 3) uint8 image.

        ``refine(x, y, z, quality) -> (y, z)``, if given, changes the codes
        before they are rounded and coded (``cae encode --effort``).
        """
        x, y, z = self.analyse(pixels, quality, progress)
        if refine is not None:
            y, z = refine(x, y, z, quality)
        return self.code(y, z, quality)

    def code(self, y: np.ndarray, z: np.ndarray, quality: float, band: int = BAND) -> tuple[list[bytes], bytes]:
        """Round and entropy-code codes ``y`` and hyper-codes ``z``, in bands of ``band`` hyper-code rows: the streams and the record."""
        import constriction

        z_symbols = self.z_tables.clamp(np.rint(z).reshape(-1, z.shape[-1])).reshape(z.shape).astype(np.int32)
        z_stream = encode_symbols(z_symbols.reshape(-1, z.shape[-1]), self.z_tables)
        crc = _crc(z_symbols)
        enc = constriction.stream.queue.RangeEncoder()
        for z0, z1, mean, index in self._bands(z_symbols, band):
            limit = self.half_ranges[index]
            symbols = np.clip(np.rint(y[z0 * HYPER_STRIDE : z1 * HYPER_STRIDE] - mean), -limit, limit).astype(np.int32)
            self._encode_codes(enc, symbols, index)
            crc = _crc(symbols, crc)
        record = RECORD.pack(int(round(quality)), crc, band)
        return [z_stream, enc.get_compressed().astype("<u4").tobytes()], record

    def decompress(self, streams: list[bytes], record: bytes, height: int, width: int, label: str = "<input>", progress=None) -> np.ndarray:
        """The (height, width, 3) uint8 image of the streams and record made by :meth:`compress` (or by release 0.2.0)."""
        if len(streams) != 2 or len(record) not in (RECORD.size, WHOLE_RECORD.size):
            raise CaeError(f"{label}: a hyperprior file holds 2 streams and a {RECORD.size}-byte record")
        ph, pw = -(-height // PAD) * PAD, -(-width // PAD) * PAD
        zh, zw = ph // PAD, pw // PAD
        if len(record) == RECORD.size:
            quality, crc, band = RECORD.unpack(record)
            if band == 0:
                raise CaeError(f"{label}: corrupt record (band height 0)")
        else:  # 0.2.0: the codes of the whole image grouped by scale, that is, one band of every hyper-code row
            (quality, crc), band = WHOLE_RECORD.unpack(record), zh
        if quality > 100:
            raise CaeError(f"{label}: quality {quality} is out of range")
        z_symbols = decode_symbols(streams[0], zh * zw, self.z_tables, label).reshape(zh, zw, -1)
        _, inverse = self._gains(quality)
        rows = _BandRows(self, self._decoder(streams[1], label), z_symbols, band, inverse, label)
        image = self._synthesis(rows, ph // STRIDE, pw // STRIDE, progress)
        rows.finish()
        if rows.crc != crc:
            raise CaeError(f"{label}: decoded symbols fail their checksum (corrupt file, or a decoder that differs from the encoder)")
        return image[:height, :width]

    def reconstruct(self, pixels: np.ndarray, quality: float = DEFAULT_QUALITY) -> np.ndarray:
        streams, record = self.compress(pixels, quality)
        return self.decompress(streams, record, pixels.shape[0], pixels.shape[1])

    # ----------------------------------------------------------- entropy coding
    def _encode_codes(self, enc, symbols: np.ndarray, index: np.ndarray) -> None:
        """Range-code the symbols level by level (all values of scale level 0 first, in raster order, ...)."""
        order, counts = _by_level(index)
        chosen = symbols.reshape(-1)[order] + self.half_ranges[index.reshape(-1)[order]]
        models = self._models_by_level()
        start = 0
        for level in np.flatnonzero(counts):
            enc.encode(np.ascontiguousarray(chosen[start : start + counts[level]], np.int32), models[level])
            start += counts[level]

    def _decoder(self, data: bytes, label: str):
        import constriction

        if len(data) % 4:
            raise CaeError(f"{label}: corrupt entropy-coded payload (length {len(data)} is not a multiple of 4)")
        return constriction.stream.queue.RangeDecoder(np.frombuffer(data, "<u4").astype(np.uint32))

    def _decode_codes(self, dec, index: np.ndarray, label: str) -> np.ndarray:
        """The symbols of scale indices ``index``, coded as :meth:`_encode_codes` does."""
        order, counts = _by_level(index)
        values = np.empty(order.shape, np.int32)
        models = self._models_by_level()
        start = 0
        try:
            for level in np.flatnonzero(counts):
                stop = start + counts[level]
                values[start:stop] = np.asarray(dec.decode(models[level], int(counts[level])), np.int32) - self.half_ranges[level]
                start = stop
        except Exception as exc:  # constriction raises on a stream that cannot be decoded
            raise CaeError(f"{label}: corrupt entropy-coded payload ({exc})") from None
        out = np.empty(order.shape, np.int32)
        out[order] = values
        return out.reshape(index.shape)


def _by_level(index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the scale indices sorted by level, raster order within a level (a stable sort), and the count of each level."""
    flat = index.reshape(-1)
    return np.argsort(flat, kind="stable"), np.bincount(flat, minlength=gaussian.LEVELS)


class _BandRows:
    """Dequantized code rows of a banded stream, decoded band by band as the synthesis asks for them.

    Rows are asked in increasing order; bands wholly above the rows last
    asked are dropped, so a few bands are held at a time.
    """

    def __init__(self, codec: HyperpriorCodec, dec, z_symbols: np.ndarray, band: int, inverse_gain: np.ndarray, label: str):
        self.codec, self.dec, self.inverse_gain, self.label = codec, dec, inverse_gain, label
        self.crc = _crc(z_symbols)
        self.bands = codec._bands(z_symbols, band)
        self.held: list[tuple[int, np.ndarray]] = []  # (first code row, dequantized rows)
        self.end = 0  # code rows decoded so far

    def _next(self) -> bool:
        step = next(self.bands, None)
        if step is None:
            return False
        z0, z1, mean, index = step
        symbols = self.codec._decode_codes(self.dec, index, self.label)
        self.crc = _crc(symbols, self.crc)
        self.held.append((z0 * HYPER_STRIDE, (symbols.astype(np.float32) + mean) * self.inverse_gain))
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


def _crc(symbols: np.ndarray, crc: int = 0) -> int:
    """CRC-32 of int32 symbols (LE, raster order), continuing ``crc``."""
    return zlib.crc32(np.ascontiguousarray(symbols, "<i4").tobytes(), crc) & 0xFFFFFFFF


# ------------------------------------------------------------------------ export
def params_path(keras_path: str | Path) -> Path:
    return Path(keras_path).with_name(Path(keras_path).stem + ".hyper.npz")


def make_params(cae) -> dict:
    """The numpy half of a trained hyperprior model: gains, integer scale network, integer tables (TensorFlow)."""
    from cae_compress.entropy_models.factorized import integer_tables
    from cae_compress.lite_export import _subpixel_kernel

    layers = []
    for name in ("scale_0", "scale_1", "scale_2"):
        layer = cae.hyper_scale.get_layer(name)
        kernel, bias = (np.asarray(v, np.float64) for v in layer.get_weights())
        if "Transpose" in type(layer).__name__:
            s = layer.strides[0]
            layers.append((_subpixel_kernel(kernel, s), np.tile(bias, s * s), s))
        else:
            layers.append((kernel, bias, 1))
    net = gaussian.IntegerScaleNet.from_float(layers)
    tables = gaussian.gaussian_tables()
    return {
        "gain": np.asarray(cae.gain, np.float32),
        "inverse_gain": np.asarray(cae.inverse_gain, np.float32),
        **net.arrays(),
        "gaussian_half_ranges": tables["half_ranges"],
        "gaussian_frequencies": np.concatenate(tables["frequencies"]),
        "z_tables": np.array(json.dumps(integer_tables(cae.prior))),
    }


def save_params(params: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **params)
    tmp.replace(path)


def load_params(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError) as exc:
        raise CaeError(f"{path}: unreadable hyperprior parameters ({exc}); run 'cae export --model-path {path}'") from None


def keras_nets(cae) -> dict:
    """The four networks of a Keras hyperprior model as numpy callables."""
    call = lambda sub: (lambda x: np.asarray(sub(np.asarray(x, np.float32), training=False)))  # noqa: E731
    return {"analysis": call(cae.encoder), "hyper_analysis": call(cae.hyper_encoder), "hyper_mean": call(cae.hyper_mean), "synthesis": call(cae.decoder)}


class HyperpriorModel:
    """A loaded hyperprior model: what the codec and the CLI use, on either backend."""

    arch = "hyperprior"
    tables = None  # the factorized-prior rate models' per-channel tables; this model keeps its own

    def __init__(self, name: str, fingerprint: bytes, nets: dict, params: dict, backend: str):
        from cae_compress.runtime import header_name

        self.name = header_name(name)
        self.fingerprint = fingerprint
        self.backend = backend
        self.codec = HyperpriorCodec(nets, params)
        self.tile_shape = (STRIDE, STRIDE, 3)
        self.code_length = self.codec.channels
        self.keras_path = None  # set by the loaders: where the Keras model is, for --effort
        self.cae = None  # the Keras model: set by load_keras, or loaded by keras_model()

    max_effort = len(EFFORT_STEPS)

    def compress(self, pixels, quality=None, progress=None, effort=DEFAULT_EFFORT, on_step=None):
        """Streams and record; ``effort`` above 1 refines the codes first (TensorFlow), ``on_step(n)`` counts its steps."""
        refine = self._refiner(effort, on_step) if effort > 1 else None
        return self.codec.compress(pixels, DEFAULT_QUALITY if quality is None else quality, progress, refine)

    def refine_steps(self, height: int, width: int, effort: int) -> int:
        """Gradient steps an encode at ``effort`` takes for an image of this size (for a progress bar)."""
        from cae_compress.refine import WINDOW as REFINE_WINDOW

        rows, cols = -(-height // PAD) * PAD // STRIDE, -(-width // PAD) * PAD // STRIDE
        return EFFORT_STEPS[effort - 1] * -(-rows // REFINE_WINDOW) * -(-cols // REFINE_WINDOW)

    def keras_model(self):
        """The Keras model (TensorFlow), loaded on first use when this model runs on LiteRT."""
        if self.cae is None:
            from cae_compress.models import load_model

            self.cae = load_model(self.keras_path)
        return self.cae

    def _refiner(self, effort: int, on_step):
        from cae_compress.codec import check_effort

        check_effort(self, effort)
        from cae_compress import refine

        cae, steps = self.keras_model(), EFFORT_STEPS[effort - 1]

        def run(x, y, z, quality):
            _, inverse = self.codec._gains(quality)
            return refine.refine(cae, x, y, z, inverse, refine.lmbda_at(cae.lambdas, quality), steps, on_step=on_step)

        return run

    def decompress(self, streams, record, height, width, label="<input>", progress=None):
        return self.codec.decompress(streams, record, height, width, label, progress)


def lite_files(keras_path: str | Path) -> dict[str, Path]:
    """The LiteRT files of the four networks beside a ``.keras`` file."""
    stem = Path(keras_path).with_suffix("")
    return {net: Path(f"{stem}.{suffix}.tflite") for net, suffix in
            (("analysis", "encoder"), ("hyper_analysis", "hyper_encoder"), ("hyper_mean", "hyper_mean"), ("synthesis", "decoder"))}


def load_runtime(keras_path: str | Path, name: str, backend: str) -> HyperpriorModel:
    """The registry's runtime loader: LiteRT (``litert``, TensorFlow-free) or Keras (``tensorflow``)."""
    if backend == "litert":
        return load_lite(keras_path, name)
    from cae_compress.models import load_model

    return load_keras(load_model(keras_path), keras_path, name)


def load_lite(keras_path: str | Path, name: str, threads: int | None = None) -> HyperpriorModel:
    """The LiteRT model beside ``keras_path``: its ``lite.json`` gives the fingerprint and any network stored in parts."""
    import os

    from cae_compress.lite import _Runner, lite_paths

    threads = threads or os.cpu_count() or 1
    meta = json.loads(lite_paths(keras_path)[2].read_text())
    files = {net: [path] for net, path in lite_files(keras_path).items()}
    if "encoder" in meta.get("parts", {}):  # an int8 head and a float tail (see lite_export.export_lite)
        files["analysis"] = [files["analysis"][0].with_name(part) for part in meta["parts"]["encoder"]]
    missing = [str(p) for paths in files.values() for p in paths if not p.is_file()]
    if missing:
        raise CaeError(f"{keras_path}: LiteRT files missing ({', '.join(missing)}); run 'cae export --model-path {keras_path}'")
    nets = {net: _Lazy(lambda paths=paths: _Chain([_Runner(p, threads) for p in paths])) for net, paths in files.items()}
    model = HyperpriorModel(name, bytes.fromhex(meta["fingerprint"]), nets, load_params(params_path(keras_path)), "litert")
    model.keras_path = Path(keras_path)
    return model


class _Chain:
    """LiteRT networks run one after the other (a network exported as several files)."""

    def __init__(self, runners):
        self.runners = runners

    def __call__(self, x):
        for run in self.runners:
            x = run(x)
        return x


class _Lazy:
    """A network loaded on its first call: decoding never loads the encoder's networks, nor encoding the decoder's."""

    def __init__(self, make):
        self._make, self._net = make, None

    def __call__(self, x):
        if self._net is None:
            self._net = self._make()
        return self._net(x)


def load_keras(cae, keras_path: str | Path, name: str) -> HyperpriorModel:
    from cae_compress.models import fingerprint

    path = params_path(keras_path)
    params = load_params(path) if path.is_file() else make_params(cae)
    model = HyperpriorModel(name, fingerprint(cae), keras_nets(cae), params, "tensorflow")
    model.cae = cae  # the Keras model itself, for export, inspection and --effort
    model.keras_path = Path(keras_path)
    return model
