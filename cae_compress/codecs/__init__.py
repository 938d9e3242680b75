"""One runtime codec per file layout, all answering one protocol (``codecs.base.Codec``).

* ``dense``: fixed-length float codes per tile (``.cae`` version 1): ``dense``, ``single-layer``, ``deep``, PCA;
* ``factorized``: integer codes of 8x8 blocks range-coded with per-channel tables (version 2): the rate models;
* ``hyperprior``: codes and hyper-codes, a Gaussian conditional with exact integer scales, in bands (version 3):
  ``hyperprior``, ``channel-context`` and ``shallow``, each composed with its latent part (``cae_compress.latent``:
  mean-scale, or the channel context), which the registry names.

``layouts`` holds how the networks see an image (tiles, windows with margins).
No TensorFlow here: a codec runs its networks as callables, LiteRT or Keras
(``cae_compress.runtime``).
"""
