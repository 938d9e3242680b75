"""The ``cae`` command line: a thin Typer layer over :mod:`cae_compress.api` and friends.

Each command parses its flags and calls one library function.  Heavy modules
(TensorFlow above all) are imported inside the commands, so ``cae --help``
starts fast.  A :class:`~cae_compress.errors.CaeError` becomes one line on
stderr and its exit status; nothing else is printed on failure.
"""

from __future__ import annotations

import functools
import shlex
import sys
from pathlib import Path
from typing import List, Optional

import typer

from cae_compress import __version__
from cae_compress.errors import CaeError
from cae_compress.io import DEFAULT_MAX_PIXELS
from cae_compress.requires import require, require_tensorflow

app = typer.Typer(
    name="cae",
    help="Compress images with convolutional autoencoders: train models, encode/decode .cae files.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _fail(message: str, code: int) -> None:
    print(f"cae: error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def handle_errors(fn):
    """Turn CaeError into one stderr line and its exit code; Ctrl-C into exit 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CaeError as exc:
            _fail(exc.message, exc.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except MemoryError:
            _fail("out of memory", 1)
        except OSError as exc:  # a file system's refusal no library function named (read-only, full, gone): still one line
            _fail(_os_error_line(exc), 2)

    return wrapper


def _os_error_line(exc: OSError) -> str:
    """The one line of an ``OSError``: its file, or stdout when that is what fails (``cae info > /dev/full``)."""
    if exc.filename:
        return f"{exc.filename}: {exc.strerror or exc}"
    try:
        sys.stdout.flush()
    except OSError:
        silence_stdout()
        return f"stdout: cannot write ({exc.strerror or exc})"
    return str(exc.strerror or exc)


def silence_stdout() -> None:
    from cae_compress.io.files import silence_stdout as silence  # Pillow comes with it: not at start-up

    silence()


def _version(value: bool):
    if value:
        print(f"cae_compress {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
):
    """Compress images with convolutional autoencoders."""


# ---------------------------------------------------------------------------- train
@app.command()
@handle_errors
def train(
    model: str = typer.Option("dense", "--model", "-m", help="Architecture: dense, single-layer, deep, factorized (a rate model: entropy-coded integer codes), hyperprior (the mean-scale hyperprior, every rate in one model) or channel-context (the hyperprior with a channel-conditional context)."),
    dataset: str = typer.Option("cifar10", "--dataset", "-d", help="cifar10, mnist, an .npz file (x_train, x_test) or a folder of images."),
    code_length: int = typer.Option(128, "--code-length", "-c", help="Values in the code of one tile (dense and deep models); code channels per 8x8 block (factorized) or per 16x16 block (hyperprior and channel-context, default 192)."),
    filters: Optional[int] = typer.Option(None, "--filters", help="Filters of the first convolution [default: 16 dense, 32 single-layer, 32 deep, 64 factorized]."),
    epochs: int = typer.Option(10, "--epochs", "-e", help="Epochs to train."),
    batch_size: int = typer.Option(128, "--batch-size", "-b", help="Tiles per training step (global: split evenly across replicas)."),
    optimizer: str = typer.Option("adam", "--optimizer", help="adam, rmsprop or sgd (momentum 0.9)."),
    learning_rate: float = typer.Option(1e-3, "--learning-rate", "--lr", help="Initial learning rate."),
    lr_decay: float = typer.Option(1.0, "--lr-decay", help="Exponential decay: the learning rate is multiplied by this every epoch (1 = constant)."),
    cosine: bool = typer.Option(False, "--cosine", help="Cosine decay of the learning rate to 5% over the run (instead of --lr-decay)."),
    lmbda: float = typer.Option(100.0, "--lmbda", help="factorized: the loss is MSE (0-255 scale) + lmbda * bits per pixel; larger gives smaller files."),
    scales: str = typer.Option("1", "--scales", help="Enlarge each training tile by a random one of these factors (bicubic) and crop it back, e.g. 1,2,3,4: thumbnails that look like large photos."),
    flip: bool = typer.Option(False, "--flip", help="Mirror each training tile left to right with probability 1/2."),
    loss: str = typer.Option("mse", "--loss", help="Fixed-length code models: mse, or psnr (minus each image's PSNR: trains for the mean per-image PSNR that cae bench reports)."),
    init_from: Optional[str] = typer.Option(None, "--init-from", help="Start from the weights of this model (same architecture), e.g. to train another --lmbda."),
    l2_penalty: float = typer.Option(0.0, "--l2-penalty", help="L2 weight decay on the kernels (single-layer: encoding convolution only)."),
    l1_code: float = typer.Option(0.0, "--l1-code", help="L1 sparsity penalty on the code (dense and deep models)."),
    grayscale: bool = typer.Option(False, "--grayscale", help="Train on luma only (1 channel)."),
    tile_size: int = typer.Option(32, "--tile-size", help="Crop size for folder data sets (array data sets use their image size)."),
    val_split: float = typer.Option(0.1, "--val-split", help="Fraction of the training set held out for validation."),
    seed: int = typer.Option(0, "--seed", help="Random seed (weights, shuffling, crops)."),
    run_dir: Optional[str] = typer.Option(None, "--run-dir", help="Run folder [default: logs/<model>/<dataset>-c<code>-<time>]."),
    resume: bool = typer.Option(False, "--resume", help="Continue the killed run in --run-dir from its last finished epoch (its saved flags apply, except --strategy and --device)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or gpu."),
    strategy: str = typer.Option("default", "--strategy", help="default (one device), mirrored (all local GPUs, or CAE_CPU_REPLICAS CPU devices) or multi-worker (cluster from TF_CONFIG)."),
    cache: bool = typer.Option(False, "--cache", help="Keep decoded training data in memory after the first epoch (folders stream otherwise)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    arch_option: List[str] = typer.Option([], "--arch-option", help="The architecture's own option, KEY=VALUE, repeatable: hyperprior and channel-context synthesis_widths=128,64,32; shallow hidden=16 (recorded in the run's run.json)."),
):
    """Train an autoencoder; writes a run folder with TensorBoard logs, checkpoints, model and results."""
    require_tensorflow("cae train")
    from cae_compress.api import int_list
    from cae_compress.training.train import TrainConfig
    from cae_compress.training.train import train as run_training

    config = TrainConfig(
        model=model, dataset=dataset, code_length=code_length, filters=filters, epochs=epochs, batch_size=batch_size,
        optimizer=optimizer, learning_rate=learning_rate, lr_decay=lr_decay, l2_penalty=l2_penalty, l1_code=l1_code,
        grayscale=grayscale, tile_size=tile_size, val_split=val_split, seed=seed, device=device,
        strategy=strategy, cache=cache, lmbda=lmbda, cosine=cosine, init_from=init_from, scales=int_list(scales, "--scales"),
        flip=flip, loss=loss, arch_options=tuple(arch_option),
    )
    if not resume:
        config.validate()  # before TensorFlow loads: bad flags fail fast
    result = run_training(config, run_dir=run_dir, resume=resume, quiet=quiet, command=shlex.join(["cae", *sys.argv[1:]]))
    v, t = result.validation, result.test
    print(f"run folder: {result.run_dir}", file=sys.stderr)
    if not v:  # a multi-worker run's other workers: the chief reports
        return
    rate = f"  {t['bpp']:.3f} bpp" if "bpp" in t else ""
    print(f"validation: MSE {v['mse']:.2f}  PSNR {v['psnr']:.2f} dB   test: MSE {t['mse']:.2f}  PSNR {t['psnr']:.2f} dB{rate}", file=sys.stderr)


# --------------------------------------------------------------------- encode/decode
_MODEL_HELP = "Shipped model by name (see 'cae models')."
_MODEL_PATH_HELP = "A trained model: model.keras or its run folder."
_BACKEND_HELP = "Inference: auto (LiteRT when the model has its .tflite files, else TensorFlow), litert or tensorflow."
_JOBS_HELP = "{} in this many worker processes, each loading the model once (the cores are shared among them)."
_THREADS_HELP = "Threads of each process's inference (as the CAE_THREADS variable) [default: every core, shared among --jobs]."
_QUIET_HELP = "Errors only: no progress bars, warnings or summary line."
_VERBOSE_HELP = "A line per file on stderr: size, bytes, bpp, seconds; and the model."


def _quiet_and_verbose(quiet: bool, verbose: bool) -> None:
    if quiet and verbose:
        raise CaeError("--quiet and --verbose contradict each other: give one")


@app.command()
@handle_errors
def encode(
    inputs: List[str] = typer.Argument(..., metavar="IN...", help="Images to encode (any format Pillow reads); '-' reads stdin."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Output file, folder (several inputs: an existing one or a name ending in '/') or '-' for stdout [default: IN with .cae]."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=_MODEL_HELP + " [default: the default shipped model]"),
    model_path: Optional[str] = typer.Option(None, "--model-path", help=_MODEL_PATH_HELP),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="Dense-code models: how codes are stored, float32, float16 or uint8 (quantized with a scale and offset) [default: uint8]."),
    compression: Optional[str] = typer.Option(None, "--compression", help="Dense-code models: payload compression, auto (the smaller of none and lzma), none, zlib or lzma [default: auto]."),
    quality: Optional[int] = typer.Option(None, "--quality", "-q", help="0-100, higher is better [default: the model's: 31 for channel-context, 50 for hyperprior, both about 0.5 bpp on photos]; models with a continuous quality."),
    bpp: Optional[float] = typer.Option(None, "--bpp", help="Per image, the highest quality whose file fits in this many bits per pixel."),
    code_length: Optional[int] = typer.Option(None, "--code-length", "-c", help="Pick the shipped dense-code model cifar10-N (fixed-length float codes, for small images and for learning; see 'cae models')."),
    effort: int = typer.Option(1, "--effort", "-e", help="1-9: encode time spent on smaller files at the same quality (above 1: refines each image's codes; needs TensorFlow; the README's table gives sizes and times). 1 is a plain encode. Models with a continuous quality (the default channel-context)."),
    force: bool = typer.Option(False, "--force", "-f", help="Replace an existing output named with -o (a default output name never replaces a file; no output ever replaces an input)."),
    recursive: bool = typer.Option(False, "--recursive", "-r", help="A folder input means every image under it; -o FOLDER mirrors its tree; a summary line at the end."),
    jobs: int = typer.Option(1, "--jobs", "-j", help=_JOBS_HELP.format("Encode")),
    threads: Optional[int] = typer.Option(None, "--threads", help=_THREADS_HELP),
    backend: str = typer.Option("auto", "--backend", help=_BACKEND_HELP),
    quiet: bool = typer.Option(False, "--quiet", help=_QUIET_HELP),
    verbose: bool = typer.Option(False, "--verbose", "-v", help=_VERBOSE_HELP),
    strip: bool = typer.Option(False, "--strip", help="Leave the input's ICC profile, EXIF and XMP out of the .cae file (kept by default; alpha is always kept)."),
):
    """Encode images to .cae files: codes of the autoencoder, tile by tile.

    Rate models (architecture factorized, e.g. the shipped rate-q1..) round their
    codes to integers and entropy-code them; --dtype and --compression apply to
    the other models only.

    The ICC profile, EXIF (orientation reset: the pixels are turned) and XMP
    of each image, and its alpha (losslessly), are kept in the .cae file;
    'cae decode' writes them back. 16-bit samples, frames after the first
    and CMYK are reduced, each with a warning line.
    """
    from cae_compress.api import encode_files

    _quiet_and_verbose(quiet, verbose)
    raise typer.Exit(encode_files(inputs, output, model, model_path, dtype, compression, force, backend=backend, quality=quality, bpp=bpp,
                                  recursive=recursive, effort=effort, code_length=code_length, jobs=jobs, quiet=quiet, verbose=verbose, threads=threads,
                                  strip=strip))


@app.command()
@handle_errors
def decode(
    inputs: List[str] = typer.Argument(..., metavar="IN...", help=".cae files to decode; '-' reads stdin."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Output image (format by suffix: .png, .webp, .jpg, ...), folder (several inputs: an existing one or a name ending in '/') or '-' for stdout (PNG) [default: IN with .png]."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=_MODEL_HELP + " [default: the model recorded in the file]"),
    model_path: Optional[str] = typer.Option(None, "--model-path", help=_MODEL_PATH_HELP),
    force: bool = typer.Option(False, "--force", "-f", help="Replace an existing output named with -o (a default output name never replaces a file; no output ever replaces an input)."),
    backend: str = typer.Option("auto", "--backend", help=_BACKEND_HELP),
    max_pixels: int = typer.Option(DEFAULT_MAX_PIXELS, "--max-pixels", help="Refuse files that declare more pixels than this, before any work (Pillow's limit)."),
    recursive: bool = typer.Option(False, "--recursive", "-r", help="A folder input means every .cae file under it; -o FOLDER mirrors its tree; a summary line at the end."),
    fast: bool = typer.Option(False, "--fast", help="Decode through the model's cheaper synthesis (faster, slightly softer: for previews, thumbnails, browsing): the same symbols, checked alike. A model without one (see 'cae info') decodes in full, with a warning."),
    jobs: int = typer.Option(1, "--jobs", "-j", help=_JOBS_HELP.format("Decode")),
    threads: Optional[int] = typer.Option(None, "--threads", help=_THREADS_HELP),
    quiet: bool = typer.Option(False, "--quiet", help=_QUIET_HELP),
    verbose: bool = typer.Option(False, "--verbose", "-v", help=_VERBOSE_HELP),
):
    """Decode .cae files back to images, with the ICC profile, EXIF, XMP and alpha a file carries (a warning names what the output format cannot hold)."""
    from cae_compress.api import decode_files

    _quiet_and_verbose(quiet, verbose)
    raise typer.Exit(decode_files(inputs, output, model, model_path, force, backend=backend, max_pixels=max_pixels, recursive=recursive, fast=fast,
                                  jobs=jobs, quiet=quiet, verbose=verbose, threads=threads))


@app.command()
@handle_errors
def info(
    inputs: List[str] = typer.Argument(..., metavar="FILE.cae...", help=".cae files ('-' reads stdin)."),
    as_json: bool = typer.Option(False, "--json", help="JSON records instead of text."),
):
    """Show what .cae files hold, without decoding them: version, model, size, quality, whether the model has a fast synthesis here, streams, checksums."""
    from cae_compress.api import info_files

    raise typer.Exit(info_files(inputs, as_json))


@app.command()
@handle_errors
def compare(
    image: str = typer.Argument(..., metavar="IMAGE", help="The image (any format Pillow reads)."),
    out_dir: str = typer.Option(..., "--output", "-o", help="Folder for index.html (the page) and crops.png."),
    bpp: Optional[float] = typer.Option(None, "--bpp", help="cae at the highest quality whose file fits this many bits per pixel."),
    quality: Optional[int] = typer.Option(None, "--quality", "-q", help="cae at this quality instead (0-100) [default: 50]."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=_MODEL_HELP + " [default: the default shipped model]"),
    model_path: Optional[str] = typer.Option(None, "--model-path", help=_MODEL_PATH_HELP),
    codecs: str = typer.Option("webp,avif,jxl,jpeg", "--codecs", help="The codecs beside cae, each at no more bytes than cae's file."),
    crop: int = typer.Option(256, "--crop", help="Side in pixels of the 1:1 crops of the region where cae's error is largest."),
):
    """Write a page comparing an image through cae and WebP, AVIF, JPEG XL and JPEG at the same bytes: sliders and 1:1 crops."""
    from cae_compress.api import compare_image

    for path in compare_image(image, out_dir, bpp=bpp, quality=quality, model=model, model_path=model_path, codecs=codecs, crop=crop):
        print(path)


@app.command()
@handle_errors
def bench(
    dataset: str = typer.Option("cifar10", "--dataset", "-d", help="cifar10, mnist, an .npz (x_test) or a folder of images (e.g. Kodak photos)."),
    models: Optional[str] = typer.Option(None, "--models", help="Shipped models, comma-separated [default: every shipped model for the data set]."),
    code_lengths: Optional[str] = typer.Option(None, "--code-lengths", help="Shipped <dataset>-<n> models by code length, e.g. 32,64,128,256."),
    model_path: Optional[List[str]] = typer.Option(None, "--model-path", help=_MODEL_PATH_HELP + " Repeatable."),
    dtype: str = typer.Option("uint8", "--dtype", help="Code dtype of the .cae files: float32, float16 or uint8."),
    limit: int = typer.Option(2000, "--limit", "-n", help="Images taken from the data set's test split (or folder)."),
    baselines: str = typer.Option("jpeg,webp,avif,jxl,pca", "--baselines", help="Comma-separated: jpeg, webp, avif, jxl (same bytes as each .cae, and their own curves), pca (same code length; cifar10/mnist)."),
    as_json: bool = typer.Option(False, "--json", help="JSON (CompressAI-style keys) instead of a table."),
    as_csv: bool = typer.Option(False, "--csv", help="CSV instead of a table."),
    plot: Optional[str] = typer.Option(None, "--plot", help="Also write PSNR against bpp for every codec to this PNG."),
    backend: str = typer.Option("auto", "--backend", help=_BACKEND_HELP),
    results_dir: Optional[str] = typer.Option(None, "--results-dir", help="Also write one JSON file per codec here, in the shape of CompressAI's published results (name, description, results lists)."),
    effort: str = typer.Option("1", "--effort", help="Encode effort(s) of models with a continuous quality, comma-separated, e.g. 1,5,9: one curve each, with its BD-rate against effort 1."),
    qualities: Optional[str] = typer.Option(None, "--qualities", help="Qualities (0-100) of the curve of a model with a continuous quality, comma-separated [default: ten from 0 to 100]."),
    compare: Optional[List[str]] = typer.Option(None, "--compare", help="A result file of that shape (e.g. CompressAI's results/image/kodak/*.json, or an earlier --results-dir file): its curve in the table (BD-rate), the JSON and the plot. Repeatable."),
    fast: bool = typer.Option(False, "--fast", help="Also decode the files of each model with a fast synthesis through it (cae decode --fast): a curve cae-NAME-fast of the same files, with its BD-rate against the full synthesis."),
):
    """Measure MSE, PSNR, SSIM, MS-SSIM, bpp, ratio and speed of models, beside JPEG, WebP, AVIF, JPEG XL and PCA.

    By default: on cifar10 (or mnist), the shipped dense-code family of that data set
    (one row per code length, PCA at the same code length); on photos, the default
    channel-context model's curve, the hyperprior's and the rate models.

    With rate models, the classic codecs also run at fixed qualities, and the BD-rate of
    each cae curve against them (0.2-1.0 and 1.0-2.0 bpp) is reported, and of each
    model against every other. Each model is its own curve, named after it (cae-NAME;
    the path's stem where two names clash).
    """
    from cae_compress.evaluation import bench as bench_lib
    from cae_compress.api import int_list, select_models
    from cae_compress.evaluation.results import read_curve, write_dir

    if plot:
        require("matplotlib", "cae bench --plot")
    curves = [read_curve(p) for p in compare or []]  # a bad file fails before any work
    if results_dir:
        from cae_compress.io.files import make_folder

        make_folder(results_dir)  # a folder that cannot be made fails before any work
    runtimes = select_models(dataset, models, code_lengths, model_path, backend)
    chosen = tuple(b.strip() for b in baselines.split(",") if b.strip())
    efforts = int_list(effort, "--effort")
    if efforts != (1,):
        require_tensorflow(f"--effort {effort}")
    quals = int_list(qualities, "--qualities") if qualities else bench_lib.HYPER_QUALITIES
    from cae_compress.api import warnings_on_stderr

    with warnings_on_stderr():  # a test image's reductions (16-bit samples, frames, CMYK): one 'cae: warning:' line each
        rows = bench_lib.run_bench(runtimes, dataset, dtype, limit, chosen, efforts=efforts, qualities=quals, fast=fast)
    if as_json:
        import json

        print(json.dumps(bench_lib.to_json(rows, dataset, curves), indent=2))
    elif as_csv:
        sys.stdout.write(bench_lib.to_csv(rows))
    else:
        print(bench_lib.format_table(rows, curves))
    if results_dir:
        paths = write_dir(bench_lib.result_files(rows, dataset), results_dir)
        print(f"results: {len(paths)} files in {results_dir}", file=sys.stderr)
    if plot:
        print(f"plot: {bench_lib.plot(rows, plot, title=f'cae bench --dataset {dataset}', compare=curves)}", file=sys.stderr)


@app.command()
@handle_errors
def export(
    model: Optional[str] = typer.Option(None, "--model", "-m", help=_MODEL_HELP),
    model_path: Optional[str] = typer.Option(None, "--model-path", help=_MODEL_PATH_HELP),
):
    """Write a model's LiteRT files (.tflite) beside it, for the fast inference path."""
    require_tensorflow("cae export")
    from cae_compress.api import export_model

    for path in export_model(model, model_path):
        print(path)


@app.command()
@handle_errors
def models():
    """List the shipped models: architecture, data, code length, test PSNR (* marks the default)."""
    from cae_compress.zoo import default_model_name, manifest, shipped_models

    found = shipped_models()
    if not found:
        print("no shipped models in this install (train one with 'cae train')", file=sys.stderr)
        return
    default = default_model_name()
    print("name\tarchitecture\tdataset\tcode\ttest PSNR (dB)\ttest bpp\tMB")
    for name, path in found.items():
        m = manifest(name)
        test = m.get("test", {})
        psnr, bpp = test.get("psnr"), test.get("bpp")
        code = f"lmbda {m['lmbda']:g}" if "lmbda" in m else m.get("code_length", "?")
        mark = "*" if name == default else ""
        size = sum(p.stat().st_size for p in path.parent.glob(f"{name}.*"))  # weights, LiteRT files, manifest
        print(f"{name}{mark}\t{m.get('architecture', '?')}\t{m.get('dataset', '?')}\t{code}\t"
              f"{'?' if psnr is None else f'{psnr:.2f}'}\t{'-' if bpp is None else f'{bpp:.3f}'}\t{size / 1e6:.1f}")


@app.command()
@handle_errors
def inspect(
    images: Optional[List[str]] = typer.Argument(None, metavar="[IMAGE]...", help="Images to show (any format Pillow reads)."),
    out_dir: str = typer.Option(..., "--output", "-o", help="Folder for the PNG figures."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=_MODEL_HELP + " [default: the default shipped model]"),
    model_path: Optional[str] = typer.Option(None, "--model-path", help=_MODEL_PATH_HELP),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Take images from a data set's test split instead (cifar10, mnist, .npz, folder)."),
    limit: int = typer.Option(16, "--limit", "-n", help="Images taken from --dataset."),
):
    """Write figures of a model: reconstructions, learned filters, activation maps, error map."""
    require_tensorflow("cae inspect")
    from cae_compress.api import inspect_model

    for path in inspect_model(images or [], out_dir, model, model_path, dataset, limit):
        print(path)


@app.command()
@handle_errors
def runs(
    root: str = typer.Argument("logs", help="Folder searched (recursively) for run folders."),
    as_json: bool = typer.Option(False, "--json", help="JSON records instead of a table."),
):
    """Compare training runs: model, data, flags and validation/test results."""
    import json

    from cae_compress.errors import CaeError
    from cae_compress.training.runs import collect_runs, format_table

    if not Path(root).is_dir():
        raise CaeError(f"{root}: no such folder")
    records = collect_runs(root)
    if as_json:
        print(json.dumps(records, indent=2))
    elif records:
        print(format_table(records))
    else:
        print(f"no runs under {root}", file=sys.stderr)


@app.command()
@handle_errors
def demo(
    out_dir: str = typer.Option("cae-demo", "--out-dir", "-o", help="Folder for the demo's files."),
):
    """Encode and decode the bundled sample image; print size, ratio and PSNR."""
    from cae_compress.demo import run_demo

    print(run_demo(out_dir).report())


class _GuardedStdout:
    """stdout whose failed writes (a full disk, a closed pipe) are one CaeError line, as every other write of the CLI is."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        try:
            return self._stream.write(text)
        except OSError as exc:
            silence_stdout()
            raise CaeError(f"stdout: cannot write ({exc.strerror or exc})") from None

    def __getattr__(self, name):
        return getattr(self._stream, name)


def main() -> None:
    sys.stdout = _GuardedStdout(sys.stdout)
    try:
        app()
    finally:
        _flush_stdout()


def _flush_stdout() -> None:
    """Flush what commands printed while we can still say why it failed (a full disk, a closed pipe): one line, exit 2, not Python's noise at exit."""
    try:
        sys.stdout.flush()
    except OSError as exc:
        silence_stdout()
        print(f"cae: error: stdout: cannot write ({exc.strerror or exc})", file=sys.stderr)
        sys.exit(2)
