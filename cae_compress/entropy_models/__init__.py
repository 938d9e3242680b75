"""Entropy models: what the range coder's probabilities come from.

* ``tables``: per-channel integer tables and the range coding of symbols with them (NumPy, constriction);
* ``factorized``: a learned per-channel density (Keras) and the integer tables made from it at export;
* ``gaussian``: the hyperprior's Gaussian conditional and integer scale network, exact on every machine
  (NumPy and integers at run time; its ``likelihood`` and ``scale_of``, the training side, import TensorFlow inside them).

The latent parts (``cae_compress.latent``) compose these into the coding of a model's codes.
"""
