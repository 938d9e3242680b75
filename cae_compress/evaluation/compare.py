"""``cae compare``: one image through cae and the classic codecs at the same bytes, to look at side by side.

squoosh.app's slider is how people judge codecs: this writes the same kind
of page, self-contained (every image embedded), for one image: cae at one
``--bpp`` or ``--quality``, then WebP, AVIF, JPEG XL and JPEG each at the
highest quality whose file is no larger than cae's
(``evaluation.baselines.classic_at_bytes``).  For each codec: a before/after
slider against the original, and a 1:1 crop of the region where cae's error
is largest, labelled with bytes, bpp, PSNR and MS-SSIM; the crops also go to
one PNG, for places without a browser.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from cae_compress import codec
from cae_compress.errors import CaeError
from cae_compress.evaluation.baselines import CLASSIC, classic_at_bytes, classic_decode
from cae_compress.evaluation.metrics import ms_ssim, per_image_mse, psnr_from_mse
from cae_compress.io.files import atomic_write, make_folder
from cae_compress.io.images import image_bytes, to_channels

CODECS = ("webp", "avif", "jxl", "jpeg")
NAMES = {"webp": "WebP (method 6)", "avif": "AVIF (speed 6)", "jxl": "JPEG XL (effort 7)", "jpeg": "JPEG"}
CROP = 256  # pixels per side of the 1:1 crops


@dataclass
class Entry:
    """One codec's file of the image and what it costs and gives."""

    codec: str
    label: str
    data: bytes
    pixels: np.ndarray
    bpp: float
    psnr: float
    ms_ssim: float
    note: str = ""  # what the file missed: the --bpp target, or cae's bytes (a codec that cannot go that small)

    def caption_lines(self) -> list[str]:
        return [self.label, f"{len(self.data)} bytes, {self.bpp:.3f} bpp", f"PSNR {self.psnr:.2f} dB, MS-SSIM {self.ms_ssim:.4f}"]

    def caption(self) -> str:
        name, size, quality = self.caption_lines()
        return f"{name}: {size}, {quality}"


def _entry(codec: str, label: str, data: bytes, original: np.ndarray, decoded: np.ndarray) -> Entry:
    h, w = original.shape[:2]
    psnr = float(psnr_from_mse(per_image_mse(original, decoded))[0])
    return Entry(codec, label, data, decoded, 8 * len(data) / (h * w), psnr, ms_ssim(original, decoded))


def _over(actual: float, target: float, unit: str) -> str:
    return f"{actual:.3f} {unit}, {100 * (actual / target - 1):.0f} % over the {target:g} {unit} asked"


def _cae_entry(original: np.ndarray, model, quality, bpp) -> Entry:
    """cae's file of the image: at ``quality``, or the highest quality that fits ``bpp`` (noted, with its overshoot, when none does)."""
    data, fits = codec.encode_fitting(model, original, quality, bpp)
    default = getattr(model, "default_quality", None)
    setting = f"bpp {bpp:g}" if bpp is not None else f"quality {quality}" if quality is not None else f"quality {default}" if default is not None else "its one rate"
    if not fits:
        setting = f"bpp {bpp:g} not met: quality 0"
    entry = _entry("cae", f"cae {model.name} ({setting})", data, original, to_channels(codec.decode(model, data), 3))
    if not fits:
        entry.note = f"the target could not be met: quality 0, the lowest, gives {_over(entry.bpp, bpp, 'bpp')}"
    return entry


def _classic_entry(original: np.ndarray, name: str, budget: int) -> Entry:
    """A classic codec's file at the highest quality of no more than ``budget`` bytes (noted when even its lowest is larger)."""
    classic, q = classic_at_bytes(original, name, budget)
    entry = _entry(name, f"{NAMES[name]} q{q}", classic, original, classic_decode(classic, 3))
    if len(classic) > budget:
        entry.note = f"cannot go down to cae's {budget} bytes: its lowest quality gives {len(classic)} bytes, {100 * (len(classic) / budget - 1):.0f} % more"
    return entry


def compare(pixels: np.ndarray, model, quality: int | None = None, bpp: float | None = None, codecs=CODECS) -> tuple[np.ndarray, list[Entry], list[str]]:
    """The image (RGB), its files and what was skipped: cae's (``model``, a loaded codec) first, then each classic codec at no more bytes than cae's.

    A codec that cannot encode the image at all (JPEG XL's encoder refuses
    images of a few pixels) is skipped, and the third list says why.
    """
    unknown = [c for c in codecs if c not in CLASSIC]
    if unknown:
        raise CaeError(f"unknown codec '{unknown[0]}' (choose from: {', '.join(CODECS)})")
    original = to_channels(pixels if pixels.ndim == 3 else pixels[..., None], 3)
    entries, skipped = [_cae_entry(original, model, quality, bpp)], []
    for name in codecs:
        try:
            entries.append(_classic_entry(original, name, len(entries[0].data)))
        except CaeError:
            raise
        except Exception as exc:  # the codec's plugin refuses this image (RuntimeError, OSError, ValueError ...)
            h, w = original.shape[:2]
            skipped.append(f"{NAMES[name]}: skipped, it cannot encode this {w}x{h} image ({str(exc) or type(exc).__name__})")
    return original, entries, skipped


def worst_region(original: np.ndarray, decoded: np.ndarray, size: int = CROP) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the ``size`` x ``size`` window with the largest squared error (the whole image if smaller)."""
    err = np.square(original.astype(np.float64) - decoded.astype(np.float64)).sum(axis=-1)
    h, w = err.shape
    ch, cw = min(size, h), min(size, w)
    sums = np.pad(err.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    windows = sums[ch:, cw:] - sums[:-ch, cw:] - sums[ch:, :-cw] + sums[:-ch, :-cw]
    top, left = np.unravel_index(np.argmax(windows), windows.shape)
    return int(top), int(left), ch, cw


def _data_uri(pixels: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(image_bytes(pixels, "PNG", compress_level=6)).decode("ascii")


def crops_png(original: np.ndarray, entries: list[Entry], region: tuple[int, int, int, int]) -> bytes:
    """The 1:1 crops of ``region``, the original first, each with its caption below, in a grid of three columns."""
    top, left, ch, cw = region
    font = ImageFont.load_default(size=13)
    captions = [["original"]] + [e.caption_lines() for e in entries]
    crops = [original[top : top + ch, left : left + cw]] + [e.pixels[top : top + ch, left : left + cw] for e in entries]
    text_h, gap, cols = 3 * 15 + 6, 8, 3
    cell_w = max(cw, 240)
    rows = -(-len(crops) // cols)
    sheet = Image.new("RGB", (cols * cell_w + (cols + 1) * gap, rows * (ch + text_h) + (rows + 1) * gap), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (crop, caption) in enumerate(zip(crops, captions)):
        x = gap + (i % cols) * (cell_w + gap)
        y = gap + (i // cols) * (ch + text_h + gap)
        sheet.paste(Image.fromarray(crop), (x, y))
        for k, line in enumerate(caption):
            draw.text((x, y + ch + 2 + 15 * k), line, fill="black", font=font)
    out = io.BytesIO()
    sheet.save(out, format="PNG")
    return out.getvalue()


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cae compare: {title}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ padding: .2em .8em; text-align: right; }} th:first-child, td:first-child {{ text-align: left; }}
.slider {{ position: relative; display: inline-block; max-width: 100%; }}
.slider img {{ display: block; max-width: 100%; height: auto; }}
.frame {{ position: relative; }}
.slider img.codec {{ position: absolute; top: 0; left: 0; clip-path: inset(0 calc(100% - var(--pos, 50%)) 0 0); }}
.frame::after {{ content: ""; position: absolute; top: 0; bottom: 0; left: var(--pos, 50%); border-left: 2px solid #fff; box-shadow: 0 0 3px #000; }}
.slider input {{ width: 100%; }}
.crops {{ display: flex; flex-wrap: wrap; gap: 12px; }} .crops img {{ image-rendering: pixelated; }}
figure {{ margin: 0; }} figcaption {{ font-size: 12px; max-width: 300px; }}
</style></head>
<body data-expected-images="{n_images}">
<h1>{title}</h1>
<p>{width}x{height} pixels. cae at {setting}; every other codec at the highest quality whose file is no larger than cae's.
Left of each slider the codec, right the original.</p>
{notes}
<table><tr><th>codec</th><th>bytes</th><th>bpp</th><th>PSNR (dB)</th><th>MS-SSIM</th></tr>
{rows}
</table>
{sliders}
<h2>1:1 crops of the region where cae's error is largest (rows {top}-{bottom}, columns {left}-{right})</h2>
<div class="crops">
{crops}
</div>
<script>
var errors = [];
window.addEventListener("error", function (e) {{ errors.push(e.message || "a resource failed to load"); }}, true);
document.querySelectorAll(".slider input").forEach(function (input) {{
  input.addEventListener("input", function () {{ input.parentNode.style.setProperty("--pos", input.value + "%"); }});
}});
window.addEventListener("load", function () {{
  var images = Array.prototype.slice.call(document.images);
  var shown = images.filter(function (i) {{ return i.complete && i.naturalWidth > 0; }}).length;
  document.body.setAttribute("data-images", shown + "/" + images.length);
  document.body.setAttribute("data-errors", String(errors.length));
}});
</script>
</body></html>
"""


def notes(entries: list[Entry], skipped: list[str]) -> list[str]:
    """What the page and stderr say of targets not met and codecs skipped."""
    return [f"{e.label}: {e.note}" for e in entries if e.note] + list(skipped)


def page(original: np.ndarray, entries: list[Entry], region: tuple[int, int, int, int], title: str, setting: str, skipped=()) -> str:
    """The self-contained HTML page: what was not met or skipped, summary table, a slider per codec, the labelled 1:1 crops."""
    esc = html.escape
    said = notes(entries, list(skipped))
    warning = '<ul class="notes">\n' + "\n".join(f"<li><strong>Note:</strong> {esc(n)}</li>" for n in said) + "\n</ul>" if said else ""
    top, left, ch, cw = region
    original_uri = _data_uri(original)
    rows = "\n".join(
        f"<tr><td>{esc(e.label)}</td><td>{len(e.data)}</td><td>{e.bpp:.3f}</td><td>{e.psnr:.2f}</td><td>{e.ms_ssim:.4f}</td></tr>" for e in entries
    )
    sliders = "\n".join(
        f'<h2>{esc(e.label)} | original</h2>\n<div class="slider"><div class="frame"><img src="{original_uri}" alt="original">'
        f'<img class="codec" src="{_data_uri(e.pixels)}" alt="{esc(e.label)}"></div>'
        f'<input type="range" min="0" max="100" value="50" aria-label="{esc(e.label)} against the original"></div>'
        for e in entries
    )
    crops = [("original", original)] + [(e.caption(), e.pixels) for e in entries]
    figures = "\n".join(
        f'<figure><img src="{_data_uri(p[top : top + ch, left : left + cw])}" width="{cw}" height="{ch}" alt="{esc(c)}"><figcaption>{esc(c)}</figcaption></figure>'
        for c, p in crops
    )
    h, w = original.shape[:2]
    return PAGE.format(
        title=esc(title), n_images=2 * len(entries) + len(crops), width=w, height=h, setting=esc(setting), notes=warning, rows=rows, sliders=sliders,
        top=top, bottom=top + ch - 1, left=left, right=left + cw - 1, crops=figures,
    )


def write(pixels: np.ndarray, out_dir: str | Path, title: str, model, quality: int | None = None, bpp: float | None = None,
          codecs=CODECS, crop: int = CROP) -> tuple[Path, Path, list[Entry], list[str]]:
    """Compare and write ``out_dir/index.html`` and ``out_dir/crops.png``; returns their paths, the entries and the notes (targets missed, codecs skipped)."""
    if crop < 16:
        raise CaeError(f"--crop must be at least 16 pixels, got {crop}")
    original, entries, skipped = compare(pixels, model, quality, bpp, codecs)
    region = worst_region(original, entries[0].pixels, crop)
    cae = entries[0]
    setting = cae.label.split(" (", 1)[1].rstrip(")")
    if bpp is not None:
        setting = f"{bpp:g} bpp asked, {cae.bpp:.3f} bpp written" + (" (the target could not be met)" if cae.note else "")
    out = make_folder(out_dir)
    html_path = atomic_write(out / "index.html", page(original, entries, region, title, setting, skipped).encode("utf-8"))
    png_path = atomic_write(out / "crops.png", crops_png(original, entries, region))
    return html_path, png_path, entries, notes(entries, skipped)
