"""``cae bench``: rate and distortion of the models, beside honest baselines, measured the same way.

For every model, each image goes through the real codec (``codec.encode``
and ``codec.decode``, the code path of ``cae encode``/``decode``): the bytes
counted are those of the file, header included.  For each ``.cae`` file, JPEG,
WebP, AVIF and JPEG XL (Pillow) are given the same byte budget (the highest
quality that fits), and where the data set has a training split, PCA with the same code
length goes through the same codec as the best linear code.

When entropy-coded models are benched, the classic codecs also run at a
fixed ladder of quality settings (:data:`CURVE_QUALITIES`), so their own
rate-distortion curves are measured in the same run, and the Bjøntegaard
delta rate of each cae curve against each of theirs over 0.2-1.0 bpp is
reported (:func:`rate_summary`; negative means fewer bits for the same PSNR),
and of each model's curve against every other model's.

Every model is its own codec, named after the model (``cae-<name>``; the
path's stem, then a number, where two models' names clash), with its own
curve, BD-rates and result file.  ``fast=True`` also decodes each file of a
model with a fast synthesis through it: a curve ``cae-<name>-fast`` of the
same files, with its BD-rate against the full synthesis.

Reported per codec: MSE (0-255), PSNR (dB, mean of per-image PSNR), SSIM
(mean), bits per pixel and compression ratio (raw W*H*C bytes over the real
file bytes, summed over images), and encode/decode time per image.
"""

from __future__ import annotations

import csv
import io
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import PIL


from cae_compress import __version__, codec
from cae_compress.codecs import dense
from cae_compress.evaluation.baselines import CLASSIC, PCAModel, classic_at_bytes, classic_decode, classic_encode
from cae_compress.errors import CaeError
from cae_compress.evaluation.results import result_file
from cae_compress.io.files import atomic_write
from cae_compress.io.images import list_images, read_image
from cae_compress.training.data import load_dataset
from cae_compress.io.images import to_channels
from cae_compress.evaluation.metrics import bd_rate, ms_ssim, per_image_mse, psnr_from_mse, ssim

BASELINES = ("jpeg", "webp", "avif", "jxl", "pca")
CURVE_QUALITIES = (3, 5, 8, 10, 15, 20, 30, 40, 50, 60, 75, 80, 85, 90, 95)  # 80, 85: two points of WebP and AVIF within 1-2 bpp on Kodak
BD_RANGE = (0.2, 1.0)  # bpp over which the BD-rates are computed (the field's range, and the keys without a suffix)
HIGH_RANGE = (1.0, 2.0)  # and the top of the range: keys ending in _1-2bpp


@dataclass
class Row:
    codec: str  # "cae", "jpeg", "webp", "pca"
    name: str  # model name, or e.g. "jpeg@cifar10-128"
    code_length: int | None
    images: int
    bytes: float  # mean file bytes per image
    bpp: float
    ratio: float
    mse: float
    psnr: float
    ssim: float
    ms_ssim: float
    encode_ms: float
    decode_ms: float


def _summarize(codec_name, name, code_length, images, sizes, outputs, enc_s, dec_s) -> Row:
    raw = sum(im.size for im in images)
    pixels = sum(im.shape[0] * im.shape[1] for im in images)
    mse = np.array([per_image_mse(a, b)[0] for a, b in zip(images, outputs)])
    return Row(
        codec=codec_name, name=name, code_length=code_length, images=len(images),
        bytes=float(np.mean(sizes)), bpp=8.0 * sum(sizes) / pixels, ratio=raw / sum(sizes),
        mse=float(mse.mean()), psnr=float(np.mean(psnr_from_mse(mse))),
        ssim=float(np.mean([ssim(a, b) for a, b in zip(images, outputs)])),
        ms_ssim=float(np.mean([ms_ssim(a, b) for a, b in zip(images, outputs)])),
        encode_ms=1000 * enc_s / len(images), decode_ms=1000 * dec_s / len(images),
    )


def _measure(images: list[np.ndarray], encode, decode, progress=None) -> tuple[list[int], list[np.ndarray], float, float]:
    """Run ``encode(i, image) -> bytes`` and ``decode(data, image) -> pixels`` on each image, timing both."""
    sizes, outputs, enc, dec = [], [], 0.0, 0.0
    for i, img in enumerate(images):
        t0 = time.perf_counter()
        data = encode(i, img)
        t1 = time.perf_counter()
        out = decode(data, img)
        t2 = time.perf_counter()
        enc, dec = enc + t1 - t0, dec + t2 - t1
        sizes.append(len(data))
        outputs.append(out)
        if progress:
            progress()
    return sizes, outputs, enc, dec


HYPER_QUALITIES = (0, 10, 20, 30, 40, 50, 60, 70, 85, 100)  # the hyperprior's curve


def bench_labels(models: list) -> list[str]:
    """The name each benched model goes by (its codec is ``cae-<label>``), so that no two models share a curve.

    Its own name; where two clash, the stem of its weights file; where those
    clash too, the folder above it and the stem (``a-model``); then a number.
    """
    def relabel(labels, how):
        return [how(Path(m.keras_path)) if labels.count(label) > 1 and m.keras_path is not None else label for m, label in zip(models, labels)]

    labels = relabel([m.name for m in models], lambda p: p.stem)
    labels = relabel(labels, lambda p: f"{p.parent.name}-{p.stem}")
    seen: dict[str, int] = {}
    for i, label in enumerate(list(labels)):
        if labels.count(label) > 1:
            seen[label] = seen.get(label, 0) + 1
            labels[i] = f"{label}-{seen[label]}"
    return labels


def bench_quality(model, images: list[np.ndarray], quality: int, effort: int = 1, label: str | None = None, fast: bool = False) -> tuple[list[Row], list[int]]:
    """A model with a continuous quality at one quality: a point of its curve (codec ``cae-<label>``, ``cae-<label>-e<effort>`` above effort 1).

    ``fast`` (a model with a fast synthesis): the same files decoded through
    it too, a point of the curve ``cae-<label>-fast`` (same bytes and encode
    time, its own pixels and decode time).
    """
    label = label or model.name
    files: list[bytes] = []

    def encode(i, img):
        files.append(codec.encode(model, img, quality=quality, effort=effort))
        return files[-1]

    sizes, outputs, enc, dec = _measure(images, encode, lambda data, img: codec.decode(model, data))
    name, curve = (f"{label} q{quality}", f"cae-{label}") if effort == 1 else (f"{label} e{effort} q{quality}", f"cae-{label}-e{effort}")
    rows = [_summarize(curve, name, None, images, sizes, outputs, enc, dec)]
    if fast and model.fast:
        fast_outputs, fast_dec = [], 0.0
        for data in files:
            t0 = time.perf_counter()
            fast_outputs.append(codec.decode(model, data, fast=True))
            fast_dec += time.perf_counter() - t0
        rows.append(_summarize(f"{curve}-fast", f"{label} fast {name.split(' ', 1)[1]}", None, images, sizes, fast_outputs, enc, fast_dec))
    return rows, sizes


def bench_model(model, images: list[np.ndarray], dtype: str = dense.DEFAULT_DTYPE, codec_name: str = "cae", progress=None) -> tuple[Row, list[int]]:
    """Encode and decode every image with ``model`` through the codec; the row and each file's size.

    Rate models are rows of codec ``cae-rate`` with no code length (theirs
    grows with the image).
    """
    sizes, outputs, enc, dec = _measure(images, lambda i, img: codec.encode(model, img, dtype), lambda data, img: codec.decode(model, data), progress)
    if model.entropy_coded and codec_name == "cae":
        return _summarize("cae-rate", model.name, None, images, sizes, outputs, enc, dec), sizes
    return _summarize(codec_name, model.name, model.code_length, images, sizes, outputs, enc, dec), sizes


def bench_classic(name: str, images: list[np.ndarray], budgets: list[int], label: str) -> Row:
    """A classic codec (JPEG, WebP, AVIF, JPEG XL) of each image at its byte budget."""
    sizes, outputs, enc, dec = _measure(
        images, lambda i, img: classic_at_bytes(img, name, budgets[i])[0], lambda data, img: classic_decode(data, img.shape[-1])
    )
    return _summarize(name, f"{name}@{label}", None, images, sizes, outputs, enc, dec)


def bench_classic_quality(name: str, images: list[np.ndarray], quality: int) -> Row:
    """A classic codec of every image at one quality setting: a point of that codec's own curve."""
    sizes, outputs, enc, dec = _measure(images, lambda i, img: classic_encode(img, name, quality), lambda data, img: classic_decode(data, img.shape[-1]))
    return _summarize(name, f"{name} q{quality}", None, images, sizes, outputs, enc, dec)


def _on_curve(row: Row) -> bool:
    """Whether ``row`` is a classic codec at a fixed quality (a point of its own curve, see :func:`bench_classic_quality`)."""
    return row.codec in CLASSIC and row.name.startswith(f"{row.codec} q")


def rate_summary(rows: list[Row]) -> dict:
    """BD-rate (percent) of each cae curve against each classic codec's, over 0.2-1.0 and 1.0-2.0 bpp; of each model's curve against
    every other model's (key ``cae-A_bd_rate_vs_cae-B``); of an effort's against effort 1 and of a fast synthesis' against the full one.

    A classic codec's curve is its fixed-quality rows; None where a curve
    has too few points in the range or the curves do not overlap.  Keys of
    the 1.0-2.0 bpp range end in ``_1-2bpp``.
    """
    out = _rate_summary(rows, BD_RANGE)
    out.update({f"{k}_1-2bpp": v for k, v in _rate_summary(rows, HIGH_RANGE).items()})
    return out


def _rate_summary(rows: list[Row], bpp_range: tuple[float, float]) -> dict:
    out = {}
    curves = sorted({r.codec for r in rows if r.codec.startswith("cae-")})
    for curve in curves:
        ours = sorted((r for r in rows if r.codec == curve), key=lambda r: r.bpp)
        prefix = "" if curve == "cae-rate" else f"{curve}_"
        for name in CLASSIC:
            ref = sorted((r for r in rows if r.codec == name and _on_curve(r)), key=lambda r: r.bpp)
            if ours and ref:
                out[f"{prefix}bd_rate_vs_{name}"] = bd_rate([r.bpp for r in ref], [r.psnr for r in ref], [r.bpp for r in ours], [r.psnr for r in ours], *bpp_range)
        base, against = _variant_of(curve, curves)
        if base is not None:  # an --effort curve against the same model at effort 1, a fast synthesis against the full one
            ref = sorted((r for r in rows if r.codec == base), key=lambda r: r.bpp)
            out[f"{prefix}bd_rate_vs_{against}"] = bd_rate([r.bpp for r in ref], [r.psnr for r in ref], [r.bpp for r in ours], [r.psnr for r in ours], *bpp_range)
            continue
        for other in curves:  # every other model
            if other != curve and _variant_of(other, curves)[0] is None:
                ref = sorted((r for r in rows if r.codec == other), key=lambda r: r.bpp)
                out[f"{prefix}bd_rate_vs_{other}"] = bd_rate([r.bpp for r in ref], [r.psnr for r in ref], [r.bpp for r in ours], [r.psnr for r in ours], *bpp_range)
    return out


def _variant_of(curve: str, curves) -> tuple[str | None, str]:
    """(the curve ``curve`` is a variant of, what that curve is called in its key): an effort's is effort 1's (``effort1``), a fast
    synthesis' the full one's (``full``); (None, "") for a model's own curve."""
    if curve.endswith("-fast") and curve[: -len("-fast")] in curves:
        return curve[: -len("-fast")], "full"
    base, _, effort = curve.rpartition("-e")
    if base and effort.isdigit() and base in curves:
        return base, "effort1"
    return None, ""


def load_bench_images(dataset: str, limit: int | None) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Test images of ``dataset`` (at most ``limit``) and, where there is one, its training split (for PCA)."""
    path = Path(dataset)
    if path.is_dir():
        files = list_images(path)[:limit]
        if not files:
            raise CaeError(f"{dataset}: no images found")
        return [read_image(f) for f in files], None
    ds = load_dataset(dataset)
    x = ds.x_test[:limit] if limit else ds.x_test
    return list(x), ds.x_train


def run_bench(
    models: list,
    dataset: str = "cifar10",
    dtype: str = dense.DEFAULT_DTYPE,
    limit: int | None = 1000,
    baselines: tuple[str, ...] = BASELINES,
    show_progress: bool | None = None,
    efforts: tuple[int, ...] = (1,),
    qualities: tuple[int, ...] = HYPER_QUALITIES,
    fast: bool = False,
) -> list[Row]:
    """Bench every runtime model in ``models`` on ``dataset``, with the baselines after each.

    Models with a continuous quality run at each of ``qualities``, once per
    ``--effort`` level in ``efforts`` (one curve each); with ``fast``, the
    files of a model with a fast synthesis are decoded through it too (a
    curve of its own, effort 1).  Each model is its own codec
    (:func:`bench_labels`).
    """
    from tqdm import tqdm

    unknown = set(baselines) - set(BASELINES)
    if unknown:
        raise CaeError(f"unknown baseline '{sorted(unknown)[0]}' (choose from: {', '.join(BASELINES)})")
    if not models:
        raise CaeError("no models to bench: give --models, --code-lengths or --model-path (see 'cae models')")
    if limit is not None and limit <= 0:
        raise CaeError(f"--limit must be positive, got {limit}")
    dense.check_options(dtype, "auto")
    if not qualities or any(not 0 <= q <= 100 for q in qualities):
        raise CaeError("--qualities takes values between 0 and 100")
    for model in models:
        if efforts != (1,) and model.variable_rate:
            for effort in efforts:
                codec.check_effort(model, effort)
    images, x_train = load_bench_images(dataset, limit)
    if show_progress is None:
        show_progress = sys.stderr.isatty()
    rows, pcas = [], {}
    bar = tqdm(total=len(images) * len(models), desc="bench", unit="img", disable=not show_progress, file=sys.stderr, leave=False)
    for model, label in zip(models, bench_labels(models)):
        channels = model.tile_shape[2]
        model_images = [to_channels(im, channels) for im in images]
        if model.variable_rate:
            sizes = None
            default = getattr(model, "default_quality", 50)
            for effort in efforts:
                curve = [bench_quality(model, model_images, q, effort, label, fast and effort == 1) for q in qualities]
                rows += [r for points, _ in curve for r in points]
                if sizes is None:  # the same-bytes baselines: the first effort's file nearest the model's default quality
                    sizes = curve[int(np.argmin([abs(q - default) for q in qualities]))][1]
            bar.update(len(images))
        else:
            row, sizes = bench_model(model, model_images, dtype, progress=bar.update)
            rows.append(row)
        for name in baselines:
            if name in CLASSIC:
                rows.append(bench_classic(name, model_images, sizes, label))
            elif name == "pca" and x_train is not None and x_train.shape[1:] == model.tile_shape:
                if model.code_length not in pcas:  # one fit per code length, however many models share it
                    pcas[model.code_length] = PCAModel(x_train, model.code_length)
                rows.append(bench_model(pcas[model.code_length], model_images, dtype, codec_name="pca")[0])
        if baselines and model.entropy_coded and not any(_on_curve(r) for r in rows):
            for name in (b for b in baselines if b in CLASSIC):  # the classic codecs' own curves, once
                rows += [bench_classic_quality(name, model_images, q) for q in CURVE_QUALITIES]
    bar.close()
    return rows


# ----------------------------------------------------------------------- outputs
def format_table(rows: list[Row], compare: list = ()) -> str:
    header = ["codec", "name", "code", "bytes/img", "bpp", "ratio", "MSE", "PSNR dB", "SSIM", "MS-SSIM", "enc ms", "dec ms"]
    lines = [[r.codec, r.name, "-" if r.code_length is None else str(r.code_length), f"{r.bytes:.0f}", f"{r.bpp:.3f}",
              f"{r.ratio:.1f}", f"{r.mse:.2f}", f"{r.psnr:.2f}", f"{r.ssim:.4f}", f"{r.ms_ssim:.4f}", f"{r.encode_ms:.2f}", f"{r.decode_ms:.2f}"] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(header, *lines)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths)), "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths)) for line in lines]
    for key, value in rate_summary(rows).items():
        lo, hi = HIGH_RANGE if key.endswith("_1-2bpp") else BD_RANGE
        key = key.removesuffix("_1-2bpp")
        shown = "n/a (curves do not overlap)" if value is None else f"{value:+.1f}%"
        curve, _, other = key.rpartition("bd_rate_vs_")
        curve = curve.removesuffix("_") or "the rate models"
        other = {"effort1": "effort 1 (the same model)", "full": "the full synthesis (the same files)"}.get(other, other if other.startswith("cae-") else other.upper())
        out.append(f"BD-rate of {curve} vs {other} over {lo}-{hi} bpp: {shown}")
    for key, value in compare_summary(rows, list(compare)).items():
        lo, hi = BD_RANGE
        curve, other = key.split("_bd_rate_vs_", 1)
        shown = "n/a (curves do not overlap)" if value is None else f"{value:+.1f}%"
        out.append(f"BD-rate of {curve} vs {other} (compared file) over {lo}-{hi} bpp: {shown}")
    return "\n".join(out)


def to_csv(rows: list[Row]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(asdict(rows[0])))
    writer.writeheader()
    for r in rows:
        writer.writerow(asdict(r))
    return buf.getvalue()


def compare_summary(rows: list[Row], curves: list) -> dict:
    """BD-rate (percent, over :data:`BD_RANGE`) of each cae curve against each compared result file's curve."""
    out = {}
    for curve in sorted({r.codec for r in rows if r.codec.startswith("cae-")}):
        ours = sorted((r for r in rows if r.codec == curve), key=lambda r: r.bpp)
        for ext in curves:
            out[f"{curve}_bd_rate_vs_{ext.name}"] = bd_rate(ext.bpp, ext.psnr, [r.bpp for r in ours], [r.psnr for r in ours], *BD_RANGE)
    return out


def result_files(rows: list[Row], dataset: str) -> list[dict]:
    """One CompressAI-shaped result file per codec (see ``cae_compress.evaluation.results``): each curve, or each separate model."""
    settings = {"jpeg": "Pillow JPEG", "webp": "Pillow WebP, method 6", "avif": "Pillow AVIF (libaom), speed 6", "jxl": "JPEG XL (pillow-jxl-plugin), effort 7"}
    n = max((r.images for r in rows), default=0)
    common = f"cae bench on {dataset}, {n} images; RGB PSNR and MS-SSIM of the decoded 8-bit images, bpp from the real file sizes; cae_compress {__version__}, Pillow {PIL.__version__}"
    groups: list[tuple[str, list[Row], str]] = []
    by_codec: dict[str, list[Row]] = {}
    for r in rows:
        by_codec.setdefault(r.codec, []).append(r)
    for codec_name, group in by_codec.items():
        if codec_name in CLASSIC:
            curve = [r for r in group if _on_curve(r)]
            what = "its own quality settings" if curve else "the byte budget of each .cae file"
            groups.append((codec_name, curve or group, f"{settings.get(codec_name, codec_name)} at {what}"))
        elif codec_name == "cae":  # separate models, one point each
            groups += [(r.name, [r], "a cae model through the .cae codec") for r in group]
        else:
            groups.append((codec_name, group, f"{codec_name} through the .cae codec" if codec_name != "pca" else "PCA with the models' code lengths"))
    files = []
    for name, group, what in groups:
        group = sorted(group, key=lambda r: r.bpp)
        files.append(result_file(name, f"{what}; {common}", [r.bpp for r in group], [r.psnr for r in group], [r.ms_ssim for r in group],
                                 [r.encode_ms / 1000 for r in group], [r.decode_ms / 1000 for r in group]))
    return files


def to_json(rows: list[Row], dataset: str, compare: list = ()) -> dict:
    """CompressAI-style results (``psnr-rgb``, ``bpp``, ``encoding_time`` … as lists over rate points) per codec, plus every row."""
    codecs: dict[str, list[Row]] = {}
    for r in rows:
        codecs.setdefault(r.codec, []).append(r)
    return {
        "dataset": dataset,
        "codecs": [
            {
                "name": name,
                "description": "Pillow at the byte budget of each .cae file" if name in CLASSIC else f"{name} through the .cae codec",
                "results": {
                    "psnr-rgb": [r.psnr for r in group],
                    "ssim-rgb": [r.ssim for r in group],
                    "ms-ssim-rgb": [r.ms_ssim for r in group],
                    "bpp": [r.bpp for r in group],
                    "encoding_time": [r.encode_ms / 1000 for r in group],
                    "decoding_time": [r.decode_ms / 1000 for r in group],
                    "mse": [r.mse for r in group],
                    "ratio": [r.ratio for r in group],
                    "name": [r.name for r in group],
                },
            }
            for name, group in codecs.items()
        ],
        "rows": [asdict(r) for r in rows],
        **rate_summary(rows),
        **({"compare": [{"name": c.name, "file": c.source, "bpp": c.bpp, "psnr-rgb": c.psnr} for c in compare], **compare_summary(rows, compare)} if compare else {}),
    }


def plot(rows: list[Row], path: str | Path, title: str = "", compare: list = ()) -> Path:
    """PSNR against bpp: a line per classic codec (its quality settings), a named point per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    codecs: dict[str, list[Row]] = {}
    for r in rows:
        codecs.setdefault(r.codec, []).append(r)
    for name, group in codecs.items():
        group = sorted(group, key=lambda r: r.bpp)
        if name == "cae-rate":  # a family of rate models: a curve, each point named
            ax.plot([r.bpp for r in group], [r.psnr for r in group], marker="o", linewidth=2, label="cae (rate models)")
            for r in group:
                ax.annotate(r.name, (r.bpp, r.psnr), textcoords="offset points", xytext=(4, -10), fontsize=7)
        elif name in ("cae", "pca"):  # separate models: points, each named, not a curve
            ax.plot([r.bpp for r in group], [r.psnr for r in group], marker="o" if name == "cae" else "s", linestyle="none", label=name)
            for r in group:
                ax.annotate(r.name, (r.bpp, r.psnr), textcoords="offset points", xytext=(4, 4), fontsize=7)
        else:
            ax.plot([r.bpp for r in group], [r.psnr for r in group], marker="o", label=name)
    for c in compare:  # curves read from result files (published ones, or an earlier run's)
        pts = sorted(zip(c.bpp, c.psnr))
        ax.plot([p[0] for p in pts], [p[1] for p in pts], linestyle="--", marker=".", label=f"{c.name} (file)")
    rate_bpp = [r.bpp for r in rows if r.codec == "cae-rate"]
    if rate_bpp:  # the rate models' range, not the classic codecs' highest qualities
        ax.set_xlim(0, max(1.0, 1.6 * max(rate_bpp)))
        ax.set_ylim(bottom=min(r.psnr for r in rows if r.codec == "cae-rate") - 4)
    ax.set_xlabel("bits per pixel (real file sizes)")
    ax.set_ylabel("PSNR (dB, mean over images)")
    summary = rate_summary(rows)
    if summary.get("bd_rate_vs_jpeg") is not None:
        title = f"{title}\nBD-rate vs JPEG ({BD_RANGE[0]}-{BD_RANGE[1]} bpp): {summary['bd_rate_vs_jpeg']:+.1f}%"
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    atomic_write(path, write=lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    return Path(path)
