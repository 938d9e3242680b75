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
from cae_compress.io.files import atomic_write
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

    def caption_lines(self) -> list[str]:
        return [self.label, f"{len(self.data)} bytes, {self.bpp:.3f} bpp", f"PSNR {self.psnr:.2f} dB, MS-SSIM {self.ms_ssim:.4f}"]

    def caption(self) -> str:
        name, size, quality = self.caption_lines()
        return f"{name}: {size}, {quality}"


def _entry(codec: str, label: str, data: bytes, original: np.ndarray, decoded: np.ndarray) -> Entry:
    h, w = original.shape[:2]
    psnr = float(psnr_from_mse(per_image_mse(original, decoded))[0])
    return Entry(codec, label, data, decoded, 8 * len(data) / (h * w), psnr, ms_ssim(original, decoded))


def compare(pixels: np.ndarray, model, quality: int | None = None, bpp: float | None = None, codecs=CODECS) -> tuple[np.ndarray, list[Entry]]:
    """The image (RGB) and its files: cae's (``model``, a loaded codec) first, then each classic codec at no more bytes than cae's."""
    unknown = [c for c in codecs if c not in CLASSIC]
    if unknown:
        raise CaeError(f"unknown codec '{unknown[0]}' (choose from: {', '.join(CODECS)})")
    original = to_channels(pixels if pixels.ndim == 3 else pixels[..., None], 3)
    data, _ = codec.encode_fitting(model, original, quality, bpp)
    setting = f"bpp {bpp:g}" if bpp is not None else f"quality {50 if quality is None else quality}"
    entries = [_entry("cae", f"cae {model.name} ({setting})", data, original, to_channels(codec.decode(model, data), 3))]
    for name in codecs:
        classic, q = classic_at_bytes(original, name, len(data))
        entries.append(_entry(name, f"{NAMES[name]} q{q}", classic, original, classic_decode(classic, 3)))
    return original, entries


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


def page(original: np.ndarray, entries: list[Entry], region: tuple[int, int, int, int], title: str, setting: str) -> str:
    """The self-contained HTML page: summary table, a slider per codec, the labelled 1:1 crops."""
    esc = html.escape
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
        title=esc(title), n_images=2 * len(entries) + len(crops), width=w, height=h, setting=esc(setting), rows=rows, sliders=sliders,
        top=top, bottom=top + ch - 1, left=left, right=left + cw - 1, crops=figures,
    )


def write(pixels: np.ndarray, out_dir: str | Path, title: str, model, quality: int | None = None, bpp: float | None = None,
          codecs=CODECS, crop: int = CROP) -> tuple[Path, Path, list[Entry]]:
    """Compare and write ``out_dir/index.html`` and ``out_dir/crops.png``; returns their paths and the entries."""
    if crop < 16:
        raise CaeError(f"--crop must be at least 16 pixels, got {crop}")
    original, entries = compare(pixels, model, quality, bpp, codecs)
    region = worst_region(original, entries[0].pixels, crop)
    setting = f"{bpp:g} bpp" if bpp is not None else f"quality {50 if quality is None else quality}"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    html_path = atomic_write(out / "index.html", page(original, entries, region, title, setting).encode("utf-8"))
    png_path = atomic_write(out / "crops.png", crops_png(original, entries, region))
    return html_path, png_path, entries
