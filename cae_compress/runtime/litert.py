"""Networks on LiteRT (``.tflite``), without TensorFlow: the light inference path.

Importing TensorFlow costs seconds; ``ai-edge-litert`` loads in a fraction
of that, so encoding, decoding and benchmarking use these runners whenever a
model has its LiteRT files (``cae_compress.runtime.files``), and TensorFlow
only for training, ``--effort`` and ``--backend tensorflow``.  The export,
which needs TensorFlow, is ``cae_compress.models.export``.

Imports: ``ai_edge_litert`` is imported when the first network is loaded
(a plugin that costs start-up), everything else at the top.
"""

from __future__ import annotations

import os

import numpy as np

from cae_compress._quiet import quiet_stderr
from cae_compress.errors import CaeError
from cae_compress.runtime.files import ModelFiles


class Runner:
    """One LiteRT interpreter, resized to each input shape it meets."""

    def __init__(self, path, threads: int):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:  # pragma: no cover - the package is a dependency
            raise CaeError("the LiteRT runtime (ai-edge-litert) is not installed; use --backend tensorflow") from None
        try:
            with quiet_stderr():  # "Created TensorFlow Lite XNNPACK delegate" and the like
                self.interp = Interpreter(model_path=str(path), num_threads=threads)
        except Exception as exc:
            raise CaeError(f"{path}: not a LiteRT model ({exc})") from None
        self.inp = self.interp.get_input_details()[0]["index"]
        self.out = self.interp.get_output_details()[0]["index"]
        self.shape = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.shape != x.shape:
            self.interp.resize_tensor_input(self.inp, list(x.shape))
            with quiet_stderr():
                self.interp.allocate_tensors()
            self.shape = x.shape
        self.interp.set_tensor(self.inp, np.ascontiguousarray(x, np.float32))
        self.interp.invoke()
        return self.interp.get_tensor(self.out).copy()


class Chain:
    """LiteRT networks run one after the other (a network exported as several files: an int8 head and a float tail)."""

    def __init__(self, runners):
        self.runners = runners

    def __call__(self, x):
        for run in self.runners:
            x = run(x)
        return x


class Lazy:
    """A network loaded on its first call: decoding never loads the encoder's networks, nor encoding the decoder's."""

    def __init__(self, make):
        self._make, self._net = make, None

    def __call__(self, x):
        if self._net is None:
            self._net = self._make()
        return self._net(x)


def networks(files: ModelFiles, names, threads: int | None = None) -> dict:
    """The networks ``names`` of the model as callables, each loaded on its first call; refuses missing files up front."""
    threads = threads or int(os.environ.get("CAE_THREADS") or 0) or os.cpu_count() or 1  # CAE_THREADS: a worker's share of the cores
    paths = {name: files.network_files(name) for name in names}
    missing = [str(p) for ps in paths.values() for p in ps if not p.is_file()]
    if missing:
        raise CaeError(f"{files.keras}: LiteRT files missing ({', '.join(missing)}); run 'cae export --model-path {files.keras}'")
    return {name: Lazy(lambda ps=ps: Chain([Runner(p, threads) for p in ps]) if len(ps) > 1 else Runner(ps[0], threads)) for name, ps in paths.items()}
