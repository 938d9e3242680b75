"""The interface of a latent part: runtime (NumPy), training (Keras, imported lazily) and export, in one class.

After CompressAI's ``LatentCodec`` (forward, compress, decompress), with what
this package keeps: integer scale indices decided alike on every machine,
codes coded in bands of hyper-code rows, the networks run by the codec on
either backend.

**Runtime** (an instance, built by :meth:`LatentPart.from_export` from the
codec's networks and the arrays of ``NAME.hyper.npz``):

* ``parameters(z_symbols)``: for the code rows of those hyper-code rows, a
  tuple of arrays indexed by code row (the codec crops each to a band);
* ``start()``: the state that crosses band edges (``None`` for a part whose
  bands are independent); the codec makes one per file and passes it to
  every band's ``encode``/``decode``, top to bottom;
* ``encode(enc, y, params, state)`` codes one band's codes (gained) with the
  range encoder ``enc`` and returns their int32 symbols;
  ``decode(dec, params, label, state)`` returns the symbols and the codes
  they stand for (float32, gained).

**Training** (class methods on the Keras model, TensorFlow inside):
``likelihood(cae, y, z_hat, rounding, noise, training)``, the codes as the
synthesis sees them and their information content in nats per image
(``HyperpriorCAE.code_latents`` asks it; training and ``--effort`` minimise
it).

**Export** (class method): ``export_arrays(cae)``, the integer arrays the
runtime half reads back (``NAME.hyper.npz``).

``networks`` names the float networks the runtime half runs besides the
codec's own (``NAME.<network>.tflite`` on LiteRT, the Keras sub-model of
that name on TensorFlow); the registry adds them to the codec's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class LatentPart(ABC):
    """One way of coding the codes given the hyper-codes (see the module)."""

    networks: tuple[str, ...] = ()  # float networks the runtime half runs, beside the codec's

    # ------------------------------------------------------------- runtime
    @classmethod
    @abstractmethod
    def from_export(cls, nets: dict, entropy, code_length: int) -> "LatentPart":
        """The runtime part of a loaded model: its networks (callables, by name) and its exported arrays."""

    @abstractmethod
    def parameters(self, z_symbols: np.ndarray) -> tuple:
        """Arrays indexed by code row, for the code rows of hyper-code rows ``z_symbols`` (int32, rows x cols x channels)."""

    def start(self):
        """The state that crosses band edges, made once per file (none by default: bands are independent)."""
        return None

    @abstractmethod
    def encode(self, enc, y: np.ndarray, params, state=None) -> np.ndarray:
        """Code one band's codes ``y`` (gained) into the range encoder ``enc``; returns their int32 symbols."""

    @abstractmethod
    def decode(self, dec, params, label: str, state=None) -> tuple[np.ndarray, np.ndarray]:
        """One band's int32 symbols from the range decoder ``dec``, and the float32 codes they stand for (gained)."""

    # ------------------------------------------------------------ training
    @classmethod
    @abstractmethod
    def likelihood(cls, cae, y, z_hat, rounding, noise=None, training: bool = False):
        """Keras (TensorFlow): ``(y_hat, nats)``, the codes as the synthesis sees them and their information content per image.

        ``rounding(v)`` stands for rounding (straight-through in training,
        annealed in ``--effort``, plain when evaluating); ``noise``, if given,
        replaces the rounding in the rate term by additive uniform noise.
        """

    # -------------------------------------------------------------- export
    @classmethod
    @abstractmethod
    def export_arrays(cls, cae) -> dict:
        """The integer arrays of ``cae``'s part that :meth:`from_export` reads back (stored in ``NAME.hyper.npz``)."""
