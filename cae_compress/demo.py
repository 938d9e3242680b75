"""``cae demo``: the whole job on the bundled sample image, for a first run.

Encodes ``assets/sample.png`` with the default shipped model, decodes it, and
reports sizes, compression ratio and PSNR.  With no shipped model in the
install, it first trains a small dense model on crops of the sample image
itself (offline; its time and quality: docs/install.md) and keeps it in
``$XDG_CACHE_HOME/cae_compress/demo-model`` for the next time.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from cae_compress import codec, zoo
from cae_compress.evaluation.metrics import reconstruction_metrics
from cae_compress.io import files
from cae_compress.io.images import PNG_LEVEL, image_bytes, read_image

SAMPLE = Path(__file__).resolve().parent / "assets" / "sample.png"
DEMO_EPOCHS = 60


@dataclass
class DemoResult:
    model: str
    image: Path
    cae: Path
    decoded: Path
    width: int
    height: int
    png_bytes: int
    raw_bytes: int
    cae_bytes: int
    psnr: float

    def report(self) -> str:
        return "\n".join([
            f"model:        {self.model}",
            f"image:        {self.image} ({self.width}x{self.height}, PNG {self.png_bytes} bytes, raw {self.raw_bytes} bytes)",
            f"encoded:      {self.cae} ({self.cae_bytes} bytes, {8 * self.cae_bytes / (self.width * self.height):.3f} bpp)",
            f"ratio:        {self.raw_bytes / self.cae_bytes:.1f}x (raw / .cae)",
            f"decoded:      {self.decoded}",
            f"PSNR:         {self.psnr:.2f} dB",
        ])


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cae_compress"


def demo_model_path(quiet: bool = False, epochs: int = DEMO_EPOCHS) -> Path:
    """The small demo model, trained on the sample image on first use."""
    path = _cache_dir() / "demo-model"
    if (path / "model.keras").is_file():
        return path
    from cae_compress.training.train import TrainConfig, train

    print("no shipped model yet: training a small demo model on the sample image (once) ...", file=sys.stderr)
    if path.exists():
        shutil.rmtree(path)
    config = TrainConfig(model="dense", dataset=str(SAMPLE.parent), code_length=64, filters=32, epochs=epochs, batch_size=8, learning_rate=1e-3)
    train(config, run_dir=path, quiet=quiet)
    return path


def run_demo(out_dir: str | Path = "cae-demo", quiet: bool = False, epochs: int = DEMO_EPOCHS) -> DemoResult:

    out = files.make_folder(out_dir)
    model_name = zoo.default_model_name()
    model_path = None if model_name else str(demo_model_path(quiet, epochs))
    cae, decoded = out / "sample.cae", out / "sample.decoded.png"
    runtime = zoo.load(model_name, model_path)
    original = read_image(SAMPLE)
    data = codec.encode(runtime, original)  # what cae encode and cae decode do, each failure one CaeError naming its file
    files.write_output(str(cae), data, force=True)
    files.write_output(str(decoded), image_bytes(codec.decode(runtime, data, str(cae)), "PNG", compress_level=PNG_LEVEL), force=True)
    restored = read_image(decoded)
    h, w, c = original.shape
    return DemoResult(
        model=model_name or f"demo model in {model_path}", image=SAMPLE, cae=cae, decoded=decoded, width=w, height=h,
        png_bytes=SAMPLE.stat().st_size, raw_bytes=h * w * c, cae_bytes=cae.stat().st_size,
        psnr=reconstruction_metrics(original, restored)["psnr"],
    )
