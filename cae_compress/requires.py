"""The optional dependencies and the one line a command gives when one is missing.

The light install (``pip install cae-compress``) encodes, decodes and
benchmarks on LiteRT.  TensorFlow is the ``train`` extra (``cae train``,
``inspect``, ``export``, ``--backend tensorflow``, ``--effort`` above 1) and
Matplotlib the ``plot`` extra (``cae bench --plot``); the checks here look for
them without importing them.
"""

from __future__ import annotations

import importlib.util

from cae_compress.errors import CaeError

EXTRAS = {"tensorflow": "train", "matplotlib": "plot"}


def available(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except ValueError:  # sys.modules[module] is None: imports of it are blocked
        return False


def require(module: str, what: str) -> None:
    """Raise one clear :class:`CaeError` when ``what`` needs ``module`` and it is not installed."""
    if not available(module):
        raise CaeError(f"{what} needs {_label(module)}, which the light install leaves out: pip install 'cae-compress[{EXTRAS[module]}]'")


def require_tensorflow(what: str) -> None:
    require("tensorflow", what)


def _label(module: str) -> str:
    return {"tensorflow": "TensorFlow", "matplotlib": "Matplotlib"}[module]
