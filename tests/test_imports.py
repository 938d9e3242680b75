"""The import graph of the package: no circle, and no module imports one of a layer above it.

Read from the source with ``ast`` (every ``import`` and ``from ... import``,
at the top of a module or inside a function), so a circle that only closes
when some command runs is caught too.  The layers, bottom up, are the
package's architecture: the container and I/O, the entropy models, the latent
parts (whose training halves import TensorFlow only inside them) and the
codecs (no TensorFlow), the backends that run networks, the Keras models
(TensorFlow), finding and loading models, the container's dispatch, the
evaluation and training, then the API and the CLI on top.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "cae_compress"

LAYERS = [
    ["cae_compress", "cae_compress.errors", "cae_compress.requires", "cae_compress._quiet", "cae_compress.io"],
    ["cae_compress.io.*", "cae_compress._tf", "cae_compress.evaluation.metrics", "cae_compress.entropy_models", "cae_compress.entropy_models.tables",
     "cae_compress.entropy_models.gaussian"],
    ["cae_compress.latent", "cae_compress.latent.*"],
    ["cae_compress.codecs", "cae_compress.codecs.*", "cae_compress.runtime", "cae_compress.runtime.files", "cae_compress.training",
     "cae_compress.training.data", "cae_compress.training.distribute", "cae_compress.training.runs", "cae_compress.evaluation",
     "cae_compress.evaluation.results"],
    ["cae_compress.runtime.*", "cae_compress.registry"],
    ["cae_compress.models", "cae_compress.models.*", "cae_compress.entropy_models.factorized"],
    ["cae_compress.zoo"],
    ["cae_compress.codec"],
    ["cae_compress.evaluation.*", "cae_compress.training.*"],
    ["cae_compress.api", "cae_compress.demo"],
    ["cae_compress.pillow"],
    ["cae_compress.cli", "cae_compress.__main__"],
]


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts).removesuffix(".__init__")] = path
    return out


def _layer(module: str) -> int:
    """The lowest layer naming the module exactly, else by its package's wildcard."""
    for i, names in enumerate(LAYERS):
        if module in names:
            return i
    for i, names in enumerate(LAYERS):
        if any(n.endswith(".*") and module.startswith(n[:-1]) for n in names):
            return i
    raise AssertionError(f"{module} is in no layer of tests/test_imports.py: add it where it belongs")


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    found = set()
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        found |= {n for n in names if n in known and n != module}
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {m: _imports(m, p, set(mods)) for m, p in mods.items()}


def test_no_module_imports_a_layer_above_its_own():
    climbs = [f"{m} (layer {_layer(m)}) imports {d} (layer {_layer(d)})" for m, deps in _graph().items() for d in deps
              if _layer(d) > _layer(m) and not (m == "cae_compress" or d.startswith(m + "."))]
    assert not climbs, climbs


def test_the_import_graph_has_no_circle():
    graph = _graph()
    state: dict[str, int] = {}

    def visit(m, stack):
        state[m] = 1
        for d in sorted(graph[m]):
            if d.startswith(m + "."):  # a package's __init__ naming its own modules is not a circle
                continue
            if state.get(d) == 1:
                raise AssertionError(" -> ".join(stack[stack.index(d):] + [d]) if d in stack else f"{m} -> {d}")
            if d not in state:
                visit(d, stack + [d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
