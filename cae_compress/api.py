"""The functions behind the CLI commands, usable from Python as they are.

>>> from cae_compress import api
>>> api.encode_files(["a.png", "b.jpg"], model_path="logs/dense/run/model.keras")
0
>>> api.decode_files(["a.cae"])
0
"""

from __future__ import annotations

import sys
from pathlib import Path

from cae_compress import codec, zoo
from cae_compress.codecs import dense
from cae_compress.errors import CaeError
from cae_compress.io import DEFAULT_MAX_PIXELS, files
from cae_compress.io import format as fmt
from cae_compress.evaluation.visualize import inspect_model as draw_figures
from cae_compress.io.images import format_for_path, image_bytes, read_image
from cae_compress.training.data import load_dataset

# TensorFlow (inspect, export) and Matplotlib are imported by the commands that need them; tqdm when a bar shows.


def int_list(text: str, flag: str) -> tuple[int, ...]:
    """A flag's comma-separated integers, e.g. ``--scales 1,2,3``."""
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise CaeError(f"{flag} takes integers separated by commas, got '{text}'") from None


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
) -> int:
    """Encode image files (or ``-`` for stdin) to ``.cae``; returns the exit status (0, or 2 if any failed).

    ``quality`` (0-100, higher is better) and ``bpp`` apply to models with a
    continuous quality (the default ``hyperprior``): ``bpp`` finds, per image,
    the highest quality whose file fits in that many bits per pixel
    (bisection; quality 0 with a warning if none does).  ``effort`` (1-9,
    default 1) above 1 refines each image's codes before coding them: smaller
    files for more encode time (TensorFlow); ``progress`` False silences its
    progress bar.  ``code_length`` N picks the shipped dense-code model
    ``cifar10-N``.
    """
    if dtype is not None or compression is not None:  # options of the dense-code models' files: checked before any work
        dense.check_options(dtype or dense.DEFAULT_DTYPE, compression or dense.DEFAULT_COMPRESSION)
    chosen = [x for x in (model and "--model", model_path and "--model-path", code_length is not None and "--code-length") if x]
    if len(chosen) > 1:
        raise CaeError(f"{' and '.join(chosen)} both pick a model: give one")
    if code_length is not None:
        model = zoo.family_model("cifar10", code_length)
    if quality is not None and bpp is not None:
        raise CaeError("--quality and --bpp both set the quality: give one")
    if quality is not None and not 0 <= quality <= 100:
        raise CaeError(f"--quality must be between 0 and 100, got {quality}")
    if bpp is not None and not bpp > 0:
        raise CaeError(f"--bpp must be positive, got {bpp}")
    jobs = files.plan(inputs, output, ".cae", recursive)
    runtime = zoo.load(model, model_path, backend)
    if quality is not None or bpp is not None:
        codec.check_quality(runtime, "--quality" if quality is not None else "--bpp")
    codec.check_effort(runtime, effort)  # before any work: the level, the model, TensorFlow

    def fit(pixels, label):
        """The file at --quality, or at the highest quality whose file fits the --bpp budget (bisection)."""
        if not effort or effort == 1:
            return _fit(pixels, label, None)
        from tqdm import tqdm

        show = sys.stderr.isatty() if progress is None else progress
        with tqdm(desc=f"refine {label}", unit="step", disable=not show, file=sys.stderr, leave=False) as bar:
            return _fit(pixels, label, bar.update)

    def _fit(pixels, label, on_step):
        if bpp is None:
            return codec.encode(runtime, pixels, dtype, compression, quality=quality, effort=effort, on_step=on_step)
        best, fits = codec.encode_within(runtime, pixels, bpp * pixels.shape[0] * pixels.shape[1] / 8, effort, on_step)
        if not fits:
            print(f"cae: warning: {label}: no quality fits {bpp} bpp; wrote {8 * len(best) / (pixels.shape[0] * pixels.shape[1]):.3f} bpp at quality 0", file=sys.stderr)
        return best

    def work(job: files.Job) -> None:
        label = "<stdin>" if job.source == files.STDIO else job.source
        data = files.read_input(job.source)
        if not data:
            raise CaeError(f"{label}: empty input")
        pixels = read_image(data, label)
        _check_target(job, force)
        if pixels.shape[-1] in (2, 4):
            print(f"cae: warning: {label}: alpha channel dropped (the .cae stores color only)", file=sys.stderr)
        files.write_output(job.target, fit(pixels, label), force)

    return files.run_jobs(jobs, work, progress, desc="encode", summary=recursive)


def _check_target(job: files.Job, force: bool) -> None:
    """Never write over the input itself, and not over another file without ``force``."""
    if files.same_file(job.source, job.target):
        raise CaeError(f"{job.source}: the output would overwrite the input itself; choose another name with -o")
    if job.target != files.STDIO and Path(job.target).exists() and not force:
        raise CaeError(f"{job.target}: already exists (use --force to overwrite)")


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
) -> int:
    """Decode ``.cae`` files (or ``-``) to images; the output format follows the output's suffix (PNG by default).

    Files declaring more than ``max_pixels`` (default: Pillow's bomb limit, about 179 MP) are refused.
    """
    jobs = files.plan(inputs, output, ".png", recursive)
    budget = max_pixels or DEFAULT_MAX_PIXELS
    fixed = zoo.load(model, model_path, backend) if (model or model_path) else None
    by_name: dict = {}

    def work(job: files.Job) -> None:
        label = "<stdin>" if job.source == files.STDIO else job.source
        data = files.read_input(job.source)
        header = fmt.parse_header(data, label)
        _check_target(job, force)
        codec.check_pixel_budget(header, label, budget)  # before the model is even loaded
        runtime = fixed
        if runtime is None:
            if header.model_name not in by_name:
                if header.model_name not in zoo.shipped_models():
                    raise CaeError(f"{label}: encoded by model '{header.model_name}', which is not shipped with this install; pass --model-path")
                by_name[header.model_name] = zoo.load(header.model_name, backend=backend)
            runtime = by_name[header.model_name]
        pixels = codec.decode(runtime, data, label, max_pixels=budget)
        fmt_name = "PNG" if job.target == files.STDIO else format_for_path(job.target)
        try:
            # PNG at zlib level 1: on decoded Kodak photos 3.6x faster to write than Pillow's default 6, files 6 % larger
            out = image_bytes(pixels, fmt_name, **({"compress_level": 1} if fmt_name == "PNG" else {}))
        except (KeyError, OSError, ValueError) as exc:
            raise CaeError(f"{job.target}: cannot write {fmt_name} ({exc})") from None
        files.write_output(job.target, out, force)

    return files.run_jobs(jobs, work, progress, desc="decode", summary=recursive)


def inspect_model(
    images: list[str],
    out_dir: str,
    model: str | None = None,
    model_path: str | None = None,
    dataset: str | None = None,
    limit: int = 16,
) -> list[Path]:
    """Write the figures of :mod:`cae_compress.evaluation.visualize` for image files or a data set's test images."""

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
            names = [n for n in ("hyperprior",) if n in zoo.shipped_models()] + zoo.rate_models()
    return chosen + [zoo.load(n, backend=backend) for n in names]


def export_model(model: str | None = None, model_path: str | None = None) -> list[Path]:
    """Write the LiteRT files of a trained model beside its ``.keras`` file (models trained before they existed)."""
    from cae_compress.models.export import export_lite  # TensorFlow

    path, _ = zoo.model_file(model, model_path)
    return list(export_lite(zoo.load(model_path=path, backend="tensorflow").cae, path))
