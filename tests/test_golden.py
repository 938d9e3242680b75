"""Files written by earlier releases decode to the same pixels, forever.

``tests/golden`` holds small ``.cae`` files written by each release (made by
``tools/make_golden.py``) and the sha256 of the pixels they decoded to then.
Every run decodes them again: through LiteRT the pixels must be identical,
through TensorFlow (models shipped with their ``.keras`` file) within one
grey level of them; a model's fast synthesis (``cae decode --fast``) gives
its recorded pixels too.  The symbols are exact everywhere (their CRC);
the synthesis' float kernels are the CPU's: where one instruction set
rounds a pixel the other way (one file of 0.3.0's, measured: written on a
CPU with AVX-512, decoded on AVX2 alone) the entry lists that CPU's sha256
under ``decoded_sha256_elsewhere``, and the pixels must be exactly one of
the recorded decodes.  A format or model change
that breaks an old file fails here.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from cae_compress import codec, zoo
from conftest import lite_only

GOLDEN = Path(__file__).parent / "golden"
INDEX = json.loads((GOLDEN / "golden.json").read_text())


def _model(entry, backend):
    if entry["model_path"]:
        return zoo.load(model_path=GOLDEN / entry["model_path"], backend=backend)
    return zoo.load(entry["model"], backend=backend)


def test_every_release_and_format_version_is_covered():
    versions = {e["version"] for e in INDEX.values()}
    assert {1, 2, 3} <= versions
    assert {e["model"] for e in INDEX.values() if e["release"] == "0.1.0"} >= {f"rate-q{q}" for q in range(1, 6)} | {"tiny-dense"}
    assert {e["model"] for e in INDEX.values() if e["release"] == "0.2.0"} >= {"hyperprior"}
    assert {e["model"] for e in INDEX.values() if e["release"] == "0.3.0"} >= {"hyperprior", "cifar10-64", "cifar10-128", "cifar10-256"}
    assert {e["model"] for e in INDEX.values() if e["release"] == "0.4.0"} >= {"channel-context"}
    assert {e["version"] for e in INDEX.values() if e["release"] == "0.5.0"} == {4}  # the chunked container (metadata, alpha)
    assert all("fast_decoded_sha256" in e for e in INDEX.values() if e["model"] == "channel-context")


def test_hyperprior_files_of_both_code_layouts_are_kept():
    """0.2.0 coded the codes of the whole image at once (5-byte record); 0.3.0 codes them in bands, and its tall file has several."""
    from cae_compress.io import format as fmt
    from cae_compress.codecs import hyperprior as hypercodec

    old = fmt.unpack_streams((GOLDEN / "0.2.0-hyperprior.cae").read_bytes())[1]
    new = fmt.unpack_streams((GOLDEN / "0.3.0-hyperprior-tall.cae").read_bytes())[1]
    assert len(old) == hypercodec.WHOLE_RECORD.size and len(new) == hypercodec.RECORD.size
    band_rows = hypercodec.RECORD.unpack(new)[2] * hypercodec.PAD
    assert INDEX["0.3.0-hyperprior-tall.cae"]["shape"][0] > band_rows


@pytest.mark.parametrize("name", sorted(INDEX))
def test_golden_file_decodes_to_the_same_pixels(name):
    entry = INDEX[name]
    data = (GOLDEN / name).read_bytes()
    assert data[4] == entry["version"]
    lite = _model(entry, "litert")
    pixels = codec.decode(lite, data, name)
    assert list(pixels.shape) == entry["shape"]
    accepted = {entry["decoded_sha256"]} | {e["sha256"] for e in entry.get("decoded_sha256_elsewhere", [])}
    assert hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest() in accepted
    if "fast_decoded_sha256" in entry:  # the same symbols through the model's fast synthesis
        fast = codec.decode(lite, data, name, fast=True)
        assert hashlib.sha256(np.ascontiguousarray(fast).tobytes()).hexdigest() == entry["fast_decoded_sha256"]
    if entry["model_path"] or not lite_only(entry["model"]):  # models shipped with their .keras file: TensorFlow too
        tf_pixels = codec.decode(_model(entry, "tensorflow"), data, name)
        assert np.abs(tf_pixels.astype(int) - pixels.astype(int)).max() <= 1


def test_golden_file_through_the_cli(tmp_path):
    import subprocess
    import sys

    name = "0.1.0-rate-q3.cae"
    out = tmp_path / "out.png"
    result = subprocess.run([sys.executable, "-m", "cae_compress", "decode", str(GOLDEN / name), "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    from PIL import Image

    with Image.open(out) as im:
        pixels = np.asarray(im)
    assert hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest() == INDEX[name]["decoded_sha256"]
