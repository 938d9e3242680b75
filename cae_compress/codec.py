"""Images to ``.cae`` bytes and back: the container and the dispatch, nothing else.

:func:`encode` hands the pixels to the model's codec (``model.compress``,
``cae_compress.codecs``) and puts what it gives, streams and a record, in a
file of the version the codec writes (``cae_compress.io.format``);
:func:`decode` reads and checks the file, checks it was made by this model,
and hands its streams and record to ``model.decompress``.  How an image
becomes codes and back, and how the codes are coded, is the codec's
business: every architecture answers the same protocol
(``cae_compress.codecs.base``).

Channels are the container's: a 1-channel model encodes luma; a 3-channel
model encodes grayscale images as gray RGB and the file records 1 channel,
so they decode to grayscale again.  Alpha (a 2- or 4-channel image) is
kept, losslessly, in a chunk of its own, and so are the metadata given as
``extras`` (ICC profile, EXIF, XMP): such a file is a version 4 file
(``cae_compress.io.container``); a plain image's file is the version 1-3
file of its model, as before.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from cae_compress.errors import CaeError
from cae_compress.io import DEFAULT_MAX_PIXELS
from cae_compress.io import container
from cae_compress.io import format as fmt
from cae_compress.io.images import to_channels
from cae_compress.requires import require_tensorflow

# --effort above 1 imports cae_compress.models.refine (TensorFlow) when it runs.


def prepare(pixels: np.ndarray, model_channels: int) -> tuple[np.ndarray, int]:
    """The pixels the model sees and the channel count the decoded image gets back."""
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    src_channels = pixels.shape[-1]
    out_channels = 1 if src_channels in (1, 2) or model_channels == 1 else 3
    return to_channels(pixels, model_channels), out_channels


def check_effort(model, effort: int | None, name: str = "--effort") -> None:
    """Refuse an ``--effort`` the model does not have (above 1: codecs with ``max_effort``, the hyperprior), or without TensorFlow.

    ``name`` is what the message calls it: the CLI's flag, or the Python parameter ``effort``.
    """
    if effort is None or effort == 1:
        return
    if model.max_effort == 1:
        raise CaeError(f"{name} above 1 refines the codes of models with a continuous quality (the hyperprior family); '{model.name}' has none")
    if not 1 <= effort <= model.max_effort:
        raise CaeError(f"{name} must be between 1 and {model.max_effort}, got {effort}")
    require_tensorflow(f"{name} {effort}" if name.startswith("-") else f"{name}={effort}")


def check_quality(model, flag: str = "--quality") -> None:
    """Refuse ``--quality``/``--bpp`` for a model without a continuous quality."""
    if not model.variable_rate:
        raise CaeError(f"{flag} needs a model with a continuous quality (the default channel-context model, the hyperprior); '{model.name}' has none")


def encode(model, pixels: np.ndarray, dtype: str | None = None, compression: str | None = None, progress=None, quality=None,
           effort: int | None = None, on_step=None, analysis=None, extras: container.Extras | None = None) -> bytes:
    """The ``.cae`` bytes of an (H, W, C) uint8 image under ``model`` (a loaded codec, ``cae_compress.zoo.load``).

    ``dtype`` and ``compression`` apply to models of float codes (the
    dense-code family); ``quality`` (0-100) to models with a continuous
    quality (the hyperprior); ``effort`` (1-9) above 1 spends encode time on
    smaller files (``cae_compress.models.refine``, TensorFlow), ``on_step(n)``
    counting its steps; ``analysis`` is the codec's ``analyse(pixels)`` of
    these pixels, reused across qualities (``--bpp``).  ``extras``: the
    metadata to carry (ICC profile, EXIF, XMP); the alpha of a 2- or
    4-channel image is added to them (coded losslessly).
    """
    check_effort(model, effort)
    if quality is not None:
        check_quality(model)
    x, out_channels = prepare(pixels, model.channels)
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise CaeError("image has no pixels")
    options = {k: v for k, v in (("dtype", dtype), ("compression", compression)) if v is not None and k in model.options}
    if analysis is not None:
        options["analysis"] = analysis
    if effort and effort > 1:
        from cae_compress.models.refine import refiner  # TensorFlow

        options["refine"] = refiner(model, effort, on_step)
    streams, record = model.compress(x, quality, progress=progress, **options)
    th, tw, _ = model.tile_shape
    header = fmt.Header(
        width=x.shape[1], height=x.shape[0], channels=out_channels, tile_height=th, tile_width=tw, code_length=model.code_length,
        fingerprint=model.fingerprint, model_name=model.name, version=model.version,
    )
    return fmt.pack_file(header, record, streams, with_alpha(pixels, extras))


def with_alpha(pixels: np.ndarray, extras: container.Extras | None) -> container.Extras | None:
    """``extras`` with the alpha plane of a 2- or 4-channel image, coded (once: kept if already there)."""
    if pixels.ndim == 3 and pixels.shape[-1] in (2, 4) and pixels.size and (extras is None or extras.alpha is None):
        return replace(extras or container.Extras(), alpha=container.encode_alpha(pixels[..., -1]))
    return extras


def encode_within(model, pixels: np.ndarray, budget: float, effort: int | None = None, on_step=None, extras=None,
                  progress=None) -> tuple[bytes, bool]:
    """The file at the highest quality (0-100) of ``budget`` bytes or fewer, and True; or quality 0's file and False.

    The analysis runs once; every quality tried is coded (and refined, at
    ``effort``) from it.  The search keeps the highest quality known to fit
    and the lowest known not to, and tries next where the line through the
    log file sizes nearest the budget crosses it (a file grows about
    exponentially with the quality), so it usually ends after 3 or 4 tries
    where halving the range takes 7.
    """
    check_quality(model, "--bpp")
    x, _ = prepare(pixels, model.channels)
    analysis = model.analyse(x, progress) if x.size else None
    extras = with_alpha(pixels, extras)
    tried: dict[int, bytes] = {}
    lo, hi = -1, 101  # the highest quality known to fit, the lowest known not to (-1, 101: none yet)
    q = 50
    while hi - lo > 1:
        tried[q] = encode(model, pixels, quality=q, effort=effort, on_step=on_step, analysis=analysis, extras=extras)
        if len(tried[q]) <= budget:
            lo = q
        else:
            hi = q
        q = _next_quality(tried, lo, hi, budget)
    return (tried[lo], True) if lo >= 0 else (tried[0], False)


def _next_quality(tried: dict[int, bytes], lo: int, hi: int, budget: float) -> int:
    """The quality strictly between ``lo`` and ``hi`` where log file size, interpolated (or extrapolated) from the tries nearest, meets the budget."""
    known = sorted(tried, key=lambda q: abs(np.log(len(tried[q]) / budget)))[:2]
    if len(known) == 2 and len(tried[known[0]]) != len(tried[known[1]]):
        (qa, qb), (la, lb) = known, (np.log(len(tried[q])) for q in known)
        guess = qa + (np.log(budget) - la) * (qb - qa) / (lb - la)
    else:
        guess = known[0] + np.log(budget / len(tried[known[0]])) / 0.02  # files grow about 2 % per quality step
    # a guess just below the crossing first (it should fit), so that the next try can close the bracket
    return int(min(max(np.floor(guess), lo + 1), hi - 1))


def encode_fitting(model, pixels: np.ndarray, quality=None, bpp=None, effort=None, on_step=None, dtype=None, compression=None,
                   extras=None, progress=None) -> tuple[bytes, bool]:
    """The ``.cae`` bytes at ``quality``, or at the highest quality that fits ``bpp`` bits per pixel; and whether it fit.

    What ``cae encode``, :func:`cae_compress.compress` and ``cae compare`` do with an image.
    ``progress(n)`` is told of the analysis' steps (``model.progress_steps``).
    """
    if bpp is None:
        return encode(model, pixels, dtype, compression, progress=progress, quality=quality, effort=effort, on_step=on_step, extras=extras), True
    return encode_within(model, pixels, bpp * pixels.shape[0] * pixels.shape[1] / 8, effort, on_step, extras, progress)


def check_model(header: fmt.Header, model, label: str) -> None:
    """Refuse a model that did not make the file, naming the one that did."""
    if header.fingerprint != model.fingerprint:
        made_by = f"model '{header.model_name}'" if header.model_name else "another model"
        raise CaeError(f"{label}: encoded by {made_by} (fingerprint {header.fingerprint.hex()}), not by '{model.name}' ({model.fingerprint.hex()})")
    if header.codes_version not in model.reads:
        raise CaeError(f"{label}: a version {header.codes_version} file, which model '{model.name}' does not read")
    th, tw, _ = model.tile_shape
    if (header.tile_height, header.tile_width, header.code_length) != (th, tw, model.code_length):
        raise CaeError(f"{label}: tile {header.tile_height}x{header.tile_width} / code length {header.code_length} do not match the model")


def check_pixel_budget(header: fmt.Header, label: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Refuse a file that declares more than ``max_pixels`` pixels, before any work."""
    if header.width * header.height > max_pixels:
        raise CaeError(f"{label}: declares {header.width}x{header.height} pixels, over the decode budget of {max_pixels} (raise it with --max-pixels)")


def decode(model, data: bytes, label: str = "<input>", progress=None, max_pixels: int = DEFAULT_MAX_PIXELS, fast: bool = False,
           with_extras: bool = False):
    """The uint8 image (H, W, C) of ``.cae`` bytes, checked against ``model``.

    A file declaring more than ``max_pixels`` pixels is refused before any work.
    ``fast``: through the model's fast synthesis (the same symbols, checked
    alike; a cheaper, slightly less faithful synthesis), where it has one
    (``model.fast``); a model without one decodes in full.  A file with
    alpha decodes to 2 or 4 channels.  ``with_extras``: the pixels and the
    file's :class:`~cae_compress.io.container.Extras` (metadata).
    """
    header, record, streams, extras = fmt.unpack_all(data, label)
    check_pixel_budget(header, label, max_pixels)
    check_model(header, model, label)
    alpha = None if extras.alpha is None else container.decode_alpha(extras.alpha, header.width, header.height, label)  # before the synthesis
    options = {"fast": True} if fast and model.fast else {}
    out = model.decompress(streams, record, header.height, header.width, label, progress, **options)
    out = to_channels(out, header.channels) if header.channels != out.shape[-1] else out
    if alpha is not None:
        out = np.concatenate([out, alpha[..., None]], axis=-1)
    return (out, extras) if with_extras else out


def reconstruct(model, pixels: np.ndarray, **options) -> np.ndarray:
    """What a round trip through a file gives: ``decode(encode(pixels))``."""
    return decode(model, encode(model, pixels, **options))
