"""Entropy models: what the range coder's probabilities come from.

* ``factorized``: a learned per-channel density (Keras) and the integer tables made from it at export;
* ``gaussian``: the hyperprior's Gaussian conditional, exact on every machine (NumPy, integers).
"""
