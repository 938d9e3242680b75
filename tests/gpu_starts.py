"""Trained starts for the GPU tools' CPU tests, made from the shipped default model (no download, no ``../shared``).

The shipped ``hyperprior`` carries its LiteRT files only, so a hyperprior
start is the shipped ``channel-context`` model's own transforms, hyperprior
and the gains of the hyperprior's six anchors: the hyperprior it was
fine-tuned from, as the mirror's ``--init-npz`` reads one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def channel_context_start(folder: Path) -> Path:
    """The shipped channel-context model as a GPU slot's ``--from`` folder (nine anchors, its contexts)."""
    from cae_compress import zoo
    from cae_compress.models import load_model
    from cae_compress.models.channel_context import export_torch_npz

    export_torch_npz(load_model(zoo.model_file("channel-context")[0]), folder)
    return folder


def hyperprior_start(folder: Path) -> Path:
    """A hyperprior start (six anchors, no contexts) from the shipped channel-context model."""
    from cae_compress.models.hyperprior import LAMBDAS

    channel_context_start(folder)
    (folder / "context.npz").unlink()
    for group, key in (("analysis", "gain"), ("synthesis", "inverse_gain")):
        with np.load(folder / f"{group}.npz") as f:
            arrays = {k: f[k] for k in f.files}
        arrays[key] = arrays[key][: len(LAMBDAS)]
        np.savez_compressed(folder / f"{group}.npz", **arrays)
    return folder
