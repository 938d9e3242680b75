"""docs/scale.md's Dask example, as written there, on a two-worker LocalCluster: every file it writes decodes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cae_compress
from conftest import smooth_images

pytest.importorskip("dask.distributed", reason="Dask is in the test extra")

DOC = Path(__file__).resolve().parents[1] / "docs" / "scale.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def test_the_documented_dask_example_compresses_a_tree(tmp_path, monkeypatch):
    definitions, usage = _blocks()
    assert "LocalCluster(n_workers=2, threads_per_worker=1)" in usage
    root = tmp_path / "photos"
    for i, rel in enumerate(["a.png", "b.jpg", "x/c.png", "x/y/d.png", "x/y/e.webp"]):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(smooth_images(1, 48 + 8 * i, seed=20 + i)[0]).save(root / rel)
    (root / "notes.txt").write_text("not an image")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CAE_THREADS", "1")
    scope: dict = {}
    exec(definitions, scope)  # noqa: S102  (the documentation's code, as a user copies it)
    exec(usage.replace('"photos"', repr(str(root))).replace('"photos-cae"', repr(str(tmp_path / "out"))), scope)  # noqa: S102
    client = scope["client"]
    try:
        written = sorted(scope["written"])
        assert len(client.nthreads()) == 2
    finally:
        client.close()
        client.cluster.close()
    expected = sorted(str(tmp_path / "out" / rel) for rel in ["a.cae", "b.cae", "x/c.cae", "x/y/d.cae", "x/y/e.cae"])
    assert written == expected
    for path in written:
        source = next(root.glob(str(Path(path).relative_to(tmp_path / "out").with_suffix(".*"))))
        original = np.asarray(Image.open(source).convert("RGB"), float)
        decoded = cae_compress.decompress(Path(path).read_bytes())
        assert decoded.shape == original.shape
        assert 10 * np.log10(255**2 / np.mean((decoded - original) ** 2)) > 28
