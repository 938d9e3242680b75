"""How far a network sees: the reach of its receptive field, measured on the Keras model, for the codecs' margins.

The hyperprior codec runs its networks on windows with :data:`MARGIN`
code positions of context (``codecs.hyperprior.MARGIN``) and derives each
band's parameters from :data:`HYPER_MARGIN` hyper-code rows beyond it; both
are constants of the file format's decoder, right only while every
network's receptive field fits inside them.  :func:`reach` measures it (a
change at one position, the farthest position of the output it moves) and
:func:`margins_needed` does so for every network of a hyperprior-family
model, so that a new architecture is checked against the margins
(``tests/test_toy_architecture.py``) instead of trusting a comment.
"""

from __future__ import annotations

import numpy as np

from cae_compress.codecs.hyperprior import HYPER_STRIDE, STRIDE


def reach(network, channels: int, up: int = 1, down: int = 1, size: int = 9, seed: int = 0) -> int:
    """Positions of the coarser grid an input position moves the output by, at most, either side.

    ``up``: output positions per input position (a synthesis: 16 pixels per
    code position); ``down``: input positions per output position (an
    analysis: 16 pixels per code position).  The network runs on ``size``
    coarse positions a side of random input, then with the middle position
    changed; the output rows and columns that change (beyond 1e-6 of the
    output's scale) give the reach.
    """
    rng = np.random.default_rng(seed)
    fine = size * down
    x = rng.normal(0, 1, (1, fine, fine, channels)).astype(np.float32)
    moved = x.copy()
    c = size // 2
    moved[0, c * down : (c + 1) * down, c * down : (c + 1) * down] += rng.normal(0, 4, (down, down, channels)).astype(np.float32)
    a, b = np.asarray(network(x)), np.asarray(network(moved))
    changed = np.abs(a - b).max(axis=(0, 3)) > 1e-6 * max(1.0, float(np.abs(a).max()))
    rows, cols = np.flatnonzero(changed.any(axis=1)) // up, np.flatnonzero(changed.any(axis=0)) // up
    if not len(rows):
        return 0
    return int(max(c - rows.min(), rows.max() - c, c - cols.min(), cols.max() - c))


def margins_needed(cae) -> dict[str, int]:
    """The reach of each network of a hyperprior-family model: code positions for the analysis and syntheses (the windows'
    ``MARGIN``), hyper-code rows for the hyper-synthesis (``HYPER_MARGIN``)."""
    m = int(cae.encoder.output_shape[-1])
    n = int(cae.hyper_encoder.output_shape[-1])
    needed = {"encoder": reach(cae.encoder, 3, down=STRIDE), "decoder": reach(cae.decoder, m, up=STRIDE)}
    if getattr(cae, "fast_decoder", None) is not None:
        needed["fast_decoder"] = reach(cae.fast_decoder, m, up=STRIDE)
    for name in ("hyper_mean", "hyper_scale"):
        needed[name] = reach(getattr(cae, name), n, up=HYPER_STRIDE)
    return needed
