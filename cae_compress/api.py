"""The functions behind the CLI commands, usable from Python as they are.

>>> from cae_compress import api
>>> api.encode_files(["a.png", "b.jpg"], model_path="logs/dense/run/model.keras")
0
>>> api.decode_files(["a.cae"])
0
"""

from __future__ import annotations

import contextlib
import json
import numbers
import os
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from cae_compress import codec, zoo
from cae_compress.codecs import dense
from cae_compress.codecs.base import Codec
from cae_compress.errors import CaeError, CaeWarning
from cae_compress.io import DEFAULT_MAX_PIXELS, files
from cae_compress.io import format as fmt
from cae_compress.io.images import PNG_LEVEL, format_for_path, image_bytes, pil_to_picture, read_image, read_picture, saving
from cae_compress.training.data import load_dataset

# The TensorFlow side (inspect, export) is imported by the commands that need it; tqdm when a bar shows.


def int_list(text: str, flag: str) -> tuple[int, ...]:
    """A flag's comma-separated integers, e.g. ``--scales 1,2,3``."""
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise CaeError(f"{flag} takes integers separated by commas, got '{text}'") from None


CLI_NAMES = {"quality": "--quality", "bpp": "--bpp", "effort": "--effort"}  # what messages call each setting: the CLI's flags
PY_NAMES = {"quality": "quality", "bpp": "bpp", "effort": "effort"}  # or the Python parameters (compress, the Pillow plugin)


def encode_files(
    inputs: list[str],
    output: str | None = None,
    model: str | None = None,
    model_path: str | None = None,
    dtype: str | None = None,
    compression: str | None = None,
    force: bool = False,
    progress: bool | None = None,
    backend: str = "auto",
    quality: int | None = None,
    bpp: float | None = None,
    recursive: bool = False,
    effort: int | None = None,
    code_length: int | None = None,
    jobs: int = 1,
    strip: bool = False,
    quiet: bool = False,
    verbose: bool = False,
    threads: int | None = None,
) -> int:
    """Encode image files (or ``-`` for stdin) to ``.cae``; returns the exit status (0, or 2 if any failed).

    ``quality`` (0-100, higher is better) and ``bpp`` apply to models with a
    continuous quality (the default ``channel-context``, the ``hyperprior``): ``bpp`` finds, per image,
    the highest quality whose file fits in that many bits per pixel (quality
    0 with a warning if none does).  ``effort`` (1-9, default 1) above 1
    refines each image's codes before coding them: smaller files for more
    encode time (TensorFlow); ``progress`` False silences the progress bars
    (None: on a terminal only).
    ``code_length`` N picks the shipped dense-code model ``cifar10-N``.
    ``jobs`` N above 1 encodes in N worker processes, each loading the model
    once (the cores shared among them, or ``threads`` each).  ``quiet``: no
    progress bars, warnings or summary (errors still); ``verbose``: a line
    per file.  ``threads``: LiteRT threads (sets ``CAE_THREADS`` for this
    process; default every core).  The ICC profile, EXIF and XMP of each
    image are kept in its file (``strip``: not); so is alpha, always.
    """
    if dtype is not None or compression is not None:  # options of the dense-code models' files: checked before any work
        dense.check_options(dtype or dense.DEFAULT_DTYPE, compression or dense.DEFAULT_COMPRESSION)
    chosen = [x for x in (model and "--model", model_path and "--model-path", code_length is not None and "--code-length") if x]
    if len(chosen) > 1:
        raise CaeError(f"{' and '.join(chosen)} both pick a model: give one")
    if code_length is not None:
        model = zoo.family_model("cifar10", code_length)
    _check_counts(jobs, threads)
    _check_quality_flags(quality, bpp)
    planned = files.plan(inputs, output, ".cae", recursive, quiet)
    _use_threads(threads)
    runtime = zoo.load(model, model_path, backend)
    _check_model_flags(runtime, quality, bpp, effort)
    encoder = _FileEncoder(dict(model=model, model_path=model_path, backend=backend), quality, bpp, effort, dtype, compression, force,
                           False if quiet else progress, quiet, strip)
    encoder.runtime = runtime
    _say_model(runtime, verbose)
    return _run(planned, encoder, jobs, threads, "encode", recursive, quiet, verbose)


def _check_counts(jobs: int, threads: int | None) -> None:
    if jobs < 1:
        raise CaeError(f"--jobs must be at least 1, got {jobs}")
    if threads is not None and threads < 1:
        raise CaeError(f"--threads must be at least 1, got {threads}")


def _use_threads(threads: int | None) -> None:
    """``--threads N``: what ``CAE_THREADS`` says, set for this process before any model loads."""
    if threads is not None:
        os.environ["CAE_THREADS"] = str(threads)


def _say_model(runtime, verbose: bool) -> None:
    if verbose:
        threads = os.environ.get("CAE_THREADS") or os.cpu_count() or 1
        print(f"cae: model {runtime.name} ({runtime.backend}, threads: {threads})", file=sys.stderr)


def _run(planned: list[files.Job], worker, jobs: int, threads: int | None, desc: str, recursive: bool, quiet: bool, verbose: bool) -> int:
    """Run ``worker`` on every job, here or (``jobs`` above 1) in worker processes each loading the model once."""
    jobs = min(jobs, len(planned))
    show = False if quiet else worker.progress
    if jobs == 1 or any(j.source == files.STDIO for j in planned):
        return files.run_jobs(planned, worker, show, desc=desc, summary=recursive and not quiet, verbose=verbose)
    import concurrent.futures
    import concurrent.futures.process
    import multiprocessing

    share = threads or max(1, (os.cpu_count() or 1) // jobs)
    context = multiprocessing.get_context("spawn")  # fresh processes: no LiteRT or TensorFlow state copied by fork
    try:
        with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker, initargs=(worker, share)) as pool:
            return files.run_jobs(planned, _work_in_worker, show, desc=desc, summary=recursive and not quiet, pool=pool, verbose=verbose)
    except concurrent.futures.process.BrokenProcessPool:
        raise CaeError(f"a worker process of --jobs {jobs} died (out of memory?); try fewer --jobs", 1) from None


BAR_DELAY = 1.0  # seconds an image takes before its progress bar shows


@contextlib.contextmanager
def _image_bar(runtime, label: str, height: int, width: int, show: bool | None):
    """A progress bar of one image's windows (``progress(n)``), shown once the image has taken :data:`BAR_DELAY`, on a terminal only; or None."""
    if show is None:
        show = sys.stderr.isatty()
    if not show:
        yield None
        return
    from tqdm import tqdm

    unit = getattr(getattr(runtime, "layout", None), "name", "windows").rstrip("s")  # tiles (dense-code models) or windows
    with tqdm(total=runtime.progress_steps(height, width), desc=Path(label).name, unit=unit, delay=BAR_DELAY, leave=False, file=sys.stderr) as bar:
        yield bar.update


def _describe(job: files.Job, data: bytes, height: int, width: int, seconds: float) -> str:
    """``-v``'s line on a file done."""
    source = "<stdin>" if job.source == files.STDIO else job.source
    target = "<stdout>" if job.target == files.STDIO else job.target
    return f"{source} -> {target}: {width}x{height}, {len(data)} bytes, {8 * len(data) / max(1, height * width):.3f} bpp, {seconds:.2f} s"


class _FileEncoder:
    """``cae encode``'s work on one file: read, encode at the settings, write; picklable, so worker processes run it too."""

    def __init__(self, model: dict, quality, bpp, effort, dtype, compression, force, progress, quiet=False, strip=False):
        self.model, self.quality, self.bpp, self.effort = model, quality, bpp, effort
        self.dtype, self.compression, self.force, self.progress, self.quiet, self.strip = dtype, compression, force, progress, quiet, strip
        self.runtime = None

    def __getstate__(self):
        return {**self.__dict__, "runtime": None}  # each process loads its own model

    def load(self) -> None:
        self.runtime = zoo.load(self.model["model"], self.model["model_path"], self.model["backend"])

    def fit(self, pixels, label: str, extras=None) -> bytes:
        """The file at --quality, or at the highest quality whose file fits the --bpp budget."""
        with _image_bar(self.runtime, label, pixels.shape[0], pixels.shape[1], self.progress) as progress:
            if not self.effort or self.effort == 1:
                return self._fit(pixels, label, None, progress, extras)
            from tqdm import tqdm

            show = sys.stderr.isatty() if self.progress is None else self.progress
            with tqdm(desc=f"refine {label}", unit="step", disable=not show, file=sys.stderr, leave=False) as bar:
                return self._fit(pixels, label, bar.update, progress, extras)

    def _fit(self, pixels, label, on_step, progress, extras=None) -> bytes:
        data, fits = codec.encode_fitting(self.runtime, pixels, self.quality, self.bpp, self.effort, on_step, self.dtype, self.compression,
                                          extras, progress)
        if not fits and not self.quiet:
            print(f"cae: warning: {_no_fit(label, self.bpp, data, pixels)}", file=sys.stderr)
        return data

    def __call__(self, job: files.Job) -> str:
        label = "<stdin>" if job.source == files.STDIO else job.source
        started = time.perf_counter()
        data = files.read_input(job.source)
        if not data:
            raise CaeError(f"{label}: empty input")
        with warnings_on_stderr(self.quiet):
            pixels, extras = read_picture(data, label)
        _check_target(job, self.force)
        out = self.fit(pixels, label, None if self.strip else extras)
        files.write_output(job.target, out, self.force, job.named)
        return _describe(job, out, pixels.shape[0], pixels.shape[1], time.perf_counter() - started)


_WORKER: dict = {}


def _start_worker(worker, threads: int) -> None:
    """A worker process of ``--jobs``: its share of the cores, and the model loaded once."""
    os.environ["CAE_THREADS"] = str(threads)
    worker.progress = False
    worker.load()
    _WORKER["work"] = worker


@contextlib.contextmanager
def warnings_on_stderr(quiet: bool = False):
    """The CLI's way to say a :class:`CaeWarning` of the library (a reduction, metadata left out): one ``cae: warning:`` line each
    (none with ``quiet``)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CaeWarning)
        try:
            yield
        finally:
            others = []
            for w in caught:
                if issubclass(w.category, CaeWarning):
                    if not quiet:
                        print(f"cae: warning: {w.message}", file=sys.stderr)
                else:
                    others.append(w)
    for w in others:  # any other warning, as it would have been shown
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _work_in_worker(job: files.Job) -> str:
    return _WORKER["work"](job)


def _check_quality_flags(quality, bpp, names: dict = CLI_NAMES) -> None:
    q, b = names["quality"], names["bpp"]
    if quality is not None and bpp is not None:
        raise CaeError(f"{q} and {b} both set the quality: give one")
    if quality is not None and not 0 <= quality <= 100:
        raise CaeError(f"{q} must be between 0 and 100, got {quality}")
    if bpp is not None and not bpp > 0:
        raise CaeError(f"{b} must be positive, got {bpp}")


def _check_model_flags(runtime, quality, bpp, effort, names: dict = CLI_NAMES) -> None:
    """Before any work: the model has the quality and effort asked for (and TensorFlow is there for an effort above 1)."""
    if quality is not None or bpp is not None:
        codec.check_quality(runtime, names["quality"] if quality is not None else names["bpp"])
    codec.check_effort(runtime, effort, names["effort"])


def _no_fit(label: str, bpp: float, data: bytes, pixels) -> str:
    return f"{label}: no quality fits {bpp} bpp; wrote {8 * len(data) / (pixels.shape[0] * pixels.shape[1]):.3f} bpp at quality 0"


def model_for_file(header: fmt.Header, label: str, backend: str = "auto", fixed=None):
    """The model that decodes a file: ``fixed`` if given, else the shipped model the header names (cached)."""
    if fixed is not None:
        return fixed
    if header.model_name not in zoo.shipped_models():
        raise CaeError(f"{label}: encoded by model '{header.model_name}', which is not shipped with this install; pass --model-path")
    return _cached(header.model_name, backend)[0]


def decode_data(data: bytes, label: str = "<input>", max_pixels: int | None = None, backend: str = "auto", model=None, fast: bool = False,
                on_full=None, with_extras: bool = False, progress=None):
    """The uint8 pixels (H, W, C) of ``.cae`` bytes, by the model the file names (or ``model``), refused over ``max_pixels``.

    What ``cae decode``, :func:`decompress` and the Pillow plugin do with a
    file.  ``fast``: through the model's fast synthesis where it has one
    (the same symbols and checks, a cheaper synthesis); where it has none
    the file decodes in full and ``on_full(message)``, if given, is told.
    A file with alpha gives 2 or 4 channels; ``with_extras``: the pixels
    and the file's metadata (:class:`~cae_compress.io.container.Extras`).
    ``progress``: a function of the model, the label and the image size
    that gives a context manager of a ``progress(n)`` callable (or None).
    """
    budget = max_pixels or DEFAULT_MAX_PIXELS
    header = fmt.parse_header(data, label)
    codec.check_pixel_budget(header, label, budget)  # before the model is even loaded
    runtime = model_for_file(header, label, backend, model)
    if fast and not runtime.fast and on_full is not None:
        on_full(no_fast_synthesis(runtime))
    bar = progress(runtime, label, header.height, header.width) if progress is not None else contextlib.nullcontext()
    with _lock_of(runtime), bar as step:
        return codec.decode(runtime, data, label, progress=step, max_pixels=budget, fast=fast, with_extras=with_extras)


def no_fast_synthesis(runtime) -> str:
    return f"model '{runtime.name}' has no fast synthesis here; decoded with its full synthesis"


def _check_target(job: files.Job, force: bool) -> None:
    """Before the work: never write over the input itself, and not over another file without ``force`` (nor under a default name at all)."""
    if files.same_file(job.source, job.target):
        raise CaeError(f"{job.source}: the output would overwrite the input itself; choose another name with -o")
    files.check_replaceable(job.target, force, job.named)


def decode_files(
    inputs: list[str],
    output: str | None = None,
    model: str | None = None,
    model_path: str | None = None,
    force: bool = False,
    progress: bool | None = None,
    backend: str = "auto",
    max_pixels: int | None = None,
    recursive: bool = False,
    fast: bool = False,
    jobs: int = 1,
    quiet: bool = False,
    verbose: bool = False,
    threads: int | None = None,
) -> int:
    """Decode ``.cae`` files (or ``-``) to images; the output format follows the output's suffix (PNG by default).

    Files declaring more than ``max_pixels`` (default: Pillow's bomb limit, about 179 MP) are refused.
    ``fast``: through each model's fast synthesis where it has one (a
    warning on stderr, once per model, where it has none: decoded in full).
    The ICC profile, EXIF, XMP and alpha a file carries go into the output
    where its format holds them; a warning line names what it cannot hold.
    ``jobs``, ``quiet``, ``verbose``, ``threads`` and ``progress``: as
    :func:`encode_files`.
    """
    _check_counts(jobs, threads)
    planned = files.plan(inputs, output, ".png", recursive, quiet)
    _use_threads(threads)
    decoder = _FileDecoder(dict(model=model, model_path=model_path, backend=backend), force, max_pixels, fast, False if quiet else progress, quiet)
    decoder.load()
    if decoder.fixed is not None:
        _say_model(decoder.fixed, verbose)
    return _run(planned, decoder, jobs, threads, "decode", recursive, quiet, verbose)


class _FileDecoder:
    """``cae decode``'s work on one file: read, decode by the model it names (or the one given), write; picklable, for ``--jobs``."""

    def __init__(self, model: dict, force, max_pixels, fast, progress, quiet=False):
        self.model, self.force, self.max_pixels, self.fast, self.progress, self.quiet = model, force, max_pixels, fast, progress, quiet
        self.fixed = None
        self.warned: set[str] = set()

    def __getstate__(self):
        return {**self.__dict__, "fixed": None}  # each process loads its own model

    def load(self) -> None:
        if self.model["model"] or self.model["model_path"]:
            self.fixed = zoo.load(self.model["model"], self.model["model_path"], self.model["backend"])

    def _full(self, message: str) -> None:
        if message not in self.warned and not self.quiet:
            self.warned.add(message)
            print(f"cae: warning: {message}", file=sys.stderr)

    def _bar(self, runtime, label, height, width):
        return _image_bar(runtime, label, height, width, self.progress)

    def __call__(self, job: files.Job) -> str:
        label = "<stdin>" if job.source == files.STDIO else job.source
        started = time.perf_counter()
        data = files.read_input(job.source)
        fmt.parse_header(data, label)
        _check_target(job, self.force)
        pixels, extras = decode_data(data, label, self.max_pixels, self.model["backend"], self.fixed, self.fast, self._full, with_extras=True,
                                     progress=self._bar)
        fmt_name = "PNG" if job.target == files.STDIO else format_for_path(job.target)  # PNG for a name without a suffix (/dev/stdout)
        pixels, args, left = saving(pixels, extras, fmt_name)
        where = "<stdout>" if job.target == files.STDIO else job.target
        if left and not self.quiet:
            print(f"cae: warning: {where}: {', '.join(left)} not written ({fmt_name} holds {'none of them' if len(left) > 1 else 'none'} here)", file=sys.stderr)
        level = {"compress_level": PNG_LEVEL} if fmt_name == "PNG" else {}
        try:
            out = image_bytes(pixels, fmt_name, **args, **level)
        except (KeyError, OSError, ValueError) as exc:
            if not args:
                raise CaeError(f"{job.target}: cannot write {fmt_name} ({exc})") from None
            try:  # metadata the writer refuses (EXIF or XMP over a JPEG segment's 64 KiB): the image without it, said
                out = image_bytes(pixels, fmt_name, **level)
            except (KeyError, OSError, ValueError) as exc:
                raise CaeError(f"{job.target}: cannot write {fmt_name} ({exc})") from None
            if not self.quiet:
                print(f"cae: warning: {where}: metadata not written ({fmt_name}: {exc})", file=sys.stderr)
        files.write_output(job.target, out, self.force, job.named)
        return _describe(job, data, pixels.shape[0], pixels.shape[1], time.perf_counter() - started)


def inspect_model(
    images: list[str],
    out_dir: str,
    model: str | None = None,
    model_path: str | None = None,
    dataset: str | None = None,
    limit: int = 16,
) -> list[Path]:
    """Write the figures of :mod:`cae_compress.evaluation.visualize` for image files or a data set's test images."""

    from cae_compress.evaluation.visualize import inspect_model as draw_figures  # cae inspect is the TensorFlow side

    if limit <= 0:
        raise CaeError(f"--limit must be positive, got {limit}")
    pixels = [read_image(p) for p in images]
    if dataset is not None:
        pixels += list(load_dataset(dataset).x_test[:limit])
    runtime = zoo.load(model, model_path, backend="tensorflow")  # the figures need the Keras layers
    return draw_figures(runtime, pixels, out_dir)


def select_models(dataset: str, models: str | None, code_lengths: str | None, model_paths: list[str] | None, backend: str = "auto") -> list:
    """Runtime models for ``cae bench``: by shipped name, by code length (``<dataset>-<n>``), by path, or every shipped one for the data set."""
    chosen = [zoo.load(model_path=p, backend=backend) for p in model_paths or []]
    names = [m.strip() for m in (models or "").split(",") if m.strip()]
    prefix = dataset if dataset in ("cifar10", "mnist") else "cifar10"  # shipped names are <dataset>-<n>
    if code_lengths:
        names += [zoo.family_model(prefix, n) for n in int_list(code_lengths, "--code-lengths")]
    if not names and not chosen:  # the data set's dense-code family; on photos (or without a family) the photo models
        names = zoo.family(prefix) if dataset in ("cifar10", "mnist") else []
        if not names and dataset != "mnist":
            names = [n for n in ("channel-context", "hyperprior") if n in zoo.shipped_models()] + zoo.rate_models()
    return chosen + [zoo.load(n, backend=backend) for n in names]


def export_model(model: str | None = None, model_path: str | None = None) -> list[Path]:
    """Write the LiteRT files of a trained model beside its ``.keras`` file (models trained before they existed)."""
    from cae_compress.models.export import export_lite  # TensorFlow

    path, _ = zoo.model_file(model, model_path)
    return list(export_lite(zoo.load(model_path=path, backend="tensorflow").cae, path))


def file_info(path: str) -> dict:
    """What ``cae info`` says of one ``.cae`` file: its header, record and streams, never its pixels."""
    label = "<stdin>" if path == files.STDIO else path
    data = files.read_input(path)
    header, record, streams, extras = fmt.unpack_all(data, label)  # checks the header and the payload's CRC-32 (version 4: every chunk's)
    shipped = zoo.shipped_models()
    model, available, described = None, False, {}
    if header.model_name in shipped:
        try:
            model = zoo.load(header.model_name)  # its description and tables; no network is loaded
        except CaeError:
            model = None
    if model is not None:
        available = model.fingerprint == header.fingerprint
        if available:
            described = model.describe_record(record)
    info = {
        "file": label, "bytes": len(data), "version": header.version,
        "model": header.model_name, "fingerprint": header.fingerprint.hex(), "model_here": available,
        "width": header.width, "height": header.height, "channels": header.channels,
        "bpp": 8 * len(data) / (header.width * header.height),
        "tile": [header.tile_height, header.tile_width], "code_length": header.code_length,
        **described,
        "record_bytes": len(record) if isinstance(record, bytes) else 0,
        "streams": [len(x) for x in streams],
        "crc32": "ok",  # the header's CRC-32 of header and payload, checked above
    }
    if header.version >= 4:  # its chunks beside the image: metadata, alpha, skipped ones
        info["layout"] = header.layout
        info["chunks"] = {name: len(value) for name, value in (("icc", extras.icc_profile), ("exif", extras.exif), ("xmp", extras.xmp),
                                                              ("alpha", extras.alpha)) if value is not None}
        info["skipped_chunks"] = list(extras.skipped)
    if header.codes_version == 1 and not described:
        info.update(dtype=header.dtype, compression=header.compression)
    if available:
        info["fast_synthesis"] = model.fast
    return info


def format_info(info: dict) -> str:
    here = "yes" if info["model_here"] else "no (pass --model-path to decode)"
    lines = [
        f"{info['file']}: {info['bytes']} bytes, .cae version {info['version']}",
        f"  image:     {info['width']}x{info['height']}, {info['channels']} channel{'s' * (info['channels'] > 1)}"
        f"{' + alpha' if 'alpha' in info.get('chunks', {}) else ''}, {info['bpp']:.3f} bpp",
        f"  model:     {info['model'] or '(unnamed)'} (fingerprint {info['fingerprint']}), here: {here}",
    ]
    if "quality" in info:
        lines.append(f"  quality:   {info['quality']}")
    if "fast_synthesis" in info:
        lines.append(f"  fast:      {'yes: a cheaper synthesis here (cae decode --fast)' if info['fast_synthesis'] else 'no fast synthesis here (--fast decodes in full)'}")
    if "dtype" in info:
        lines.append(f"  codes:     {info['dtype']}, payload compression {info['compression']}")
    lines.append(f"  streams:   {' + '.join(str(n) for n in info['streams'])} bytes" + (f", record {info['record_bytes']} bytes" if info["record_bytes"] else ""))
    if "chunks" in info:
        carried = ", ".join(f"{name} ({n} bytes)" for name, n in info["chunks"].items()) or "nothing"
        skipped = f"; skipped (unknown): {', '.join(info['skipped_chunks'])}" if info["skipped_chunks"] else ""
        lines.append(f"  chunks:    image (layout {info['layout']}), {carried}{skipped}")
    symbols = f"; symbols CRC-32 {info['symbols_crc32']}, checked when decoded" if "symbols_crc32" in info else ""
    what = "of the header and each chunk" if "chunks" in info else "of header and payload"
    lines.append(f"  checksum:  CRC-32 {what} ok{symbols}")
    return "\n".join(lines)


def info_files(inputs: list[str], as_json: bool = False) -> int:
    """``cae info``: print what each ``.cae`` file holds (stdout); a bad file is one stderr line, exit 2."""
    if not inputs:
        raise CaeError("no input files given")
    infos, status = [], 0
    for path in inputs:
        try:
            infos.append(file_info(path))
        except CaeError as exc:
            label = "<stdin>" if path == files.STDIO else path
            print(f"cae: error: {exc.message if exc.message.startswith(label) else f'{label}: {exc.message}'}", file=sys.stderr)
            status = exc.exit_code
    if as_json:
        print(json.dumps(infos, indent=2))
    elif infos:
        print("\n".join(format_info(i) for i in infos))
    return status


def compare_image(image: str, out_dir: str, bpp: float | None = None, quality: int | None = None, model: str | None = None,
                  model_path: str | None = None, codecs: str = "webp,avif,jxl,jpeg", crop: int = 256) -> list[Path]:
    """``cae compare``: the page and the crops of one image through cae and the classic codecs at the same bytes; their paths."""
    from cae_compress.evaluation import compare  # its codecs' plugins load when it runs

    if model and model_path:
        raise CaeError("--model and --model-path both pick a model: give one")
    _check_quality_flags(quality, bpp)
    with warnings_on_stderr():
        pixels = read_image(image)
    runtime, lock = resolve_model(model_path or model)
    _check_model_flags(runtime, quality, bpp, None)
    chosen = tuple(c.strip() for c in codecs.split(",") if c.strip())
    with lock:
        html_path, png_path, entries, said = compare.write(pixels, out_dir, Path(image).name, runtime, quality, bpp, chosen, crop)
    for e in entries:
        print(f"cae: compare: {e.caption()}", file=sys.stderr)
    for note in said:
        print(f"cae: warning: {note}", file=sys.stderr)
    return [html_path, png_path]


# ------------------------------------------------------------------- the bytes API
_MODELS: dict = {}  # (model, backend) -> (codec, lock): each model loaded once per process
_MODELS_LOCK = threading.Lock()
_LOCKS: dict = {}  # id(codec) -> the lock its calls hold (a LiteRT interpreter runs one call at a time)


def _lock_of(runtime) -> threading.Lock:
    with _MODELS_LOCK:
        return _LOCKS.setdefault(id(runtime), threading.Lock())


def _cached(model, backend: str = "auto"):
    """The codec of ``model`` (a shipped name, a ``.keras`` file or run folder, None for the default) and its lock, loaded once."""
    is_path = model is not None and (isinstance(model, Path) or Path(str(model)).exists() or str(model).endswith(".keras"))
    path, name = zoo.model_file(model_path=model) if is_path else zoo.model_file(model)
    key = (str(path.resolve()), name, backend)
    with _MODELS_LOCK:
        if key not in _MODELS:
            runtime = zoo.load(model_path=path, backend=backend) if is_path else zoo.load(name, backend=backend)
            _MODELS[key] = runtime
            _LOCKS.setdefault(id(runtime), threading.Lock())
        runtime = _MODELS[key]
        return runtime, _LOCKS[id(runtime)]


def resolve_model(model, backend: str = "auto"):
    """A loaded model (returned as it is) or the cached codec of a name or path, and the lock its calls take."""
    if isinstance(model, Codec):
        return model, _lock_of(model)
    return _cached(model, backend)


def as_pixels(image) -> np.ndarray:
    """An (H, W, C) uint8 array of what :func:`compress` takes (see :func:`as_picture`)."""
    return as_picture(image)[0]


def as_picture(image):
    """An (H, W, C) uint8 array and the metadata to carry (:class:`~cae_compress.io.container.Extras`, or None) of what
    :func:`compress` takes: a path of an image file (``str`` or ``os.PathLike``), a binary file object or the bytes of
    an image file (any format Pillow reads), a PIL image (the same rules as reading an image file; its ICC profile,
    EXIF and XMP from its ``info``), or an H x W [x C] uint8 array (no metadata).

    A path that cannot be read raises the ``OSError`` that opening it raises
    (``FileNotFoundError``, ...); what is not an image, a :class:`CaeError`
    (a ``ValueError``); a type it does not take, a ``TypeError``.  A
    reduction (16-bit samples, frames after the first, CMYK) is a
    :class:`~cae_compress.errors.CaeWarning`.
    """
    if isinstance(image, Image.Image):  # its reductions are said under its file's name, where it has one
        return pil_to_picture(image, str(getattr(image, "filename", "") or "<image>"))
    if isinstance(image, (str, os.PathLike)):
        return read_picture(Path(image).read_bytes(), str(image))
    if isinstance(image, (bytes, bytearray, memoryview)):
        return read_picture(bytes(image), "<bytes>")
    if hasattr(image, "read"):
        return read_picture(_read_binary(image, "image"), str(getattr(image, "name", "<file>")))
    if not isinstance(image, np.ndarray) and not hasattr(image, "__array__"):
        raise TypeError(f"image must be a path, a binary file object, the bytes of an image file, a PIL image or a uint8 array, not {type(image).__name__}")
    pixels = np.asarray(image)
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3) or (pixels.ndim == 3 and not 1 <= pixels.shape[2] <= 4):
        raise CaeError(f"image: an array must be HxW or HxWxC uint8 (C 1-4), not a {pixels.dtype} array of shape {pixels.shape}")
    return (pixels if pixels.ndim == 3 else pixels[..., None]), None


def _read_binary(f, name: str) -> bytes:
    data = f.read()
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"{name}: a file object must be opened in binary mode ('rb'), this one gives {type(data).__name__}")
    return bytes(data)


def cae_bytes(data) -> tuple[bytes, str]:
    """The bytes of what :func:`decompress` takes (``.cae`` bytes, a path, a binary file object) and a label for messages."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data), "<bytes>"
    if isinstance(data, (str, os.PathLike)):
        return Path(data).read_bytes(), str(data)  # a path that cannot be read: its OSError, as open() gives it
    if hasattr(data, "read"):
        return _read_binary(data, "data"), str(getattr(data, "name", "<file>"))
    raise TypeError(f"data must be .cae bytes, a path or a binary file object, not {type(data).__name__}")


def _whole(value, name: str, low: int, high: int, why: str = ""):
    """A Python setting that must be a whole number from ``low`` to ``high`` (an integral float such as 40.0 counts), as an int."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a whole number from {low} to {high}, not {type(value).__name__}")
    if not isinstance(value, numbers.Integral) and not float(value).is_integer():
        raise CaeError(f"{name} must be a whole number from {low} to {high}{why}, got {value}")
    value = int(value)
    if not low <= value <= high:
        raise CaeError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _check_python_settings(quality, bpp, effort) -> tuple:
    """``compress``'s settings, checked with messages that name its parameters: (quality as an int, bpp as a float, effort as an int)."""
    quality = _whole(quality, "quality", 0, 100, " (a file records its quality as an integer, so a fraction would not decode as encoded)")
    effort = _whole(effort, "effort", 1, 9)
    if bpp is not None:
        if isinstance(bpp, bool) or not isinstance(bpp, numbers.Real):
            raise TypeError(f"bpp must be a number of bits per pixel, not {type(bpp).__name__}")
        bpp = float(bpp)
        if not 0 < bpp < float("inf"):
            raise CaeError(f"bpp must be positive, got {bpp}")
    _check_quality_flags(quality, bpp, PY_NAMES)
    return quality, bpp, effort


def _check_model_argument(model) -> None:
    if model is not None and not isinstance(model, (str, os.PathLike, Codec)):
        raise TypeError(f"model must be a shipped model's name, a path or a loaded model (cae_compress.zoo.load), not {type(model).__name__}")


def _python_model(model):
    """:func:`resolve_model` for the Python API: an unknown name said in its terms (the ``model`` parameter, not ``--model-path``)."""
    _check_model_argument(model)
    try:
        return resolve_model(model)
    except zoo.UnknownModel as exc:
        raise CaeError(f"model: unknown model '{exc.model}' (shipped: {', '.join(exc.shipped) or 'none'}); "
                       "give a trained model by the path of its .keras file or run folder") from None


def compress(image, quality: int | None = None, *, bpp: float | None = None, effort: int = 1, model=None, strip: bool = False) -> bytes:
    """The ``.cae`` bytes of ``image``, like ``cae encode``.

    ``image``: a path of an image file (``str`` or ``os.PathLike``), a
    binary file object or bytes of an image file (any format Pillow reads), a
    PIL image, or an HxW[xC] uint8 array.
    ``quality`` 0-100, a whole number (default: the model's own for models with a continuous
    quality, 31 for the default ``channel-context``, 50 for ``hyperprior``,
    about 0.5 bpp on photos either way), or ``bpp``: the highest quality whose file fits
    in that many bits per pixel (quality 0, with a warning, if none does).
    ``effort`` 1-9 above 1 spends encode time on smaller files (TensorFlow).
    ``model``: a shipped model's name, a ``.keras`` file or run folder, or a
    loaded model (``cae_compress.zoo.load``); default the default model.
    Models are loaded once per process; calls are thread-safe (calls on one
    model take turns).  Alpha (RGBA, LA, a 2- or 4-channel array) is kept,
    losslessly; so are a PIL image's ICC profile, EXIF (orientation reset to
    1: the pixels are turned) and XMP, from its ``info`` (``strip``: not).
    A reduction (16-bit samples, frames after the first, CMYK) is a
    :class:`~cae_compress.errors.CaeWarning`.  A bad value raises
    :class:`CaeError` (a ``ValueError``) naming the parameter, a bad type a
    ``TypeError``, a path that cannot be read its ``OSError``; TensorFlow is
    not imported (but for ``effort`` above 1).
    """
    quality, bpp, effort = _check_python_settings(quality, bpp, effort)  # bad settings and models fail before the image is read
    _check_model_argument(model)
    pixels, extras = as_picture(image)
    return _compress(pixels, None if strip else extras, quality, bpp, effort, model)


def compress_picture(pixels: np.ndarray, extras=None, quality: int | None = None, *, bpp: float | None = None, effort: int = 1, model=None) -> bytes:
    """:func:`compress` of an (H, W, C) uint8 array and the metadata to carry (:class:`~cae_compress.io.container.Extras`, or None)."""
    quality, bpp, effort = _check_python_settings(quality, bpp, effort)
    return _compress(pixels, extras, quality, bpp, effort, model)


def _compress(pixels: np.ndarray, extras, quality, bpp, effort, model) -> bytes:
    """:func:`compress` of checked settings; a warning points at the caller of :func:`compress` or :func:`compress_picture`."""
    runtime, lock = _python_model(model)
    _check_model_flags(runtime, quality, bpp, effort, PY_NAMES)
    with lock:
        data, fits = codec.encode_fitting(runtime, pixels, quality, bpp, effort, extras=extras)
    if not fits:
        warnings.warn(_no_fit("<image>", bpp, data, pixels), stacklevel=3)
    return data


def decompress(data, *, model=None, max_pixels: int | None = None, fast: bool = False, with_info: bool = False):
    """The (H, W, C) uint8 pixels of a ``.cae`` file (C is 1 or 3; 2 or 4 with alpha), like ``cae decode``.

    ``data``: the file's bytes, its path (``str`` or ``os.PathLike``) or a
    binary file object.  The file names its model; ``model`` (a name, a path or a loaded model)
    decodes a file of a model that is not shipped.  Files declaring more than
    ``max_pixels`` (default Pillow's bomb limit, about 179 MP) are refused
    before any work.  ``fast``: through the model's cheaper synthesis, like
    ``cae decode --fast`` (previews, thumbnails, browsing): the same symbols,
    checked alike, slightly less faithful pixels; a model without one decodes
    in full, with a warning.  ``with_info``: ``(pixels, info)``, ``info``
    the file's metadata as Pillow's ``info`` holds it (``icc_profile``,
    ``exif``, ``xmp``: bytes; only those the file carries), ready for
    ``Image.fromarray(pixels).save(..., **info)``.  A bad file raises
    :class:`CaeError` (a ``ValueError``), a bad type a ``TypeError``.
    """
    _check_model_argument(model)
    if max_pixels is not None and (isinstance(max_pixels, bool) or not isinstance(max_pixels, numbers.Integral)):
        raise TypeError(f"max_pixels must be an integer, not {type(max_pixels).__name__}")
    data, label = cae_bytes(data)
    fixed = _python_model(model)[0] if model is not None else None
    out = decode_data(data, label, max_pixels, model=fixed, fast=fast, on_full=lambda m: warnings.warn(m, stacklevel=3), with_extras=with_info)
    return (out[0], out[1].info()) if with_info else out
