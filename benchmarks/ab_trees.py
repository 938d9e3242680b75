"""Whole-process ``cae encode`` and ``cae decode`` of one photo from several source trees, alternated: the before/after of a change.

    git worktree add --detach /tmp/before REV
    python benchmarks/ab_trees.py /tmp/before . [--photo ../shared/data/kodak/kodim01.png] [--runs 7]

Each tree runs as ``python -m cae_compress`` with ``PYTHONPATH`` set to it
(the same interpreter and packages), encode then decode, tree after tree,
``--runs`` rounds; medians per tree, and the sha256 of each tree's file and
PNG, so that a change that should not touch the bytes shows that it did not.
Nothing here is a test.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("trees", nargs="+")
    p.add_argument("--photo", default=str(Path(__file__).resolve().parents[2] / "shared/data/kodak/kodim01.png"))
    p.add_argument("--runs", type=int, default=7)
    args = p.parse_args(argv)
    trees = [str(Path(t).resolve()) for t in args.trees]
    times = {(t, k): [] for t in trees for k in ("encode", "decode")}
    digests = {}
    with tempfile.TemporaryDirectory() as work:

        def run(tree: str, *cmd: str) -> float:
            start = time.perf_counter()
            r = subprocess.run([sys.executable, "-m", "cae_compress", *cmd], env=dict(os.environ, PYTHONPATH=tree), capture_output=True, text=True, cwd=work)
            if r.returncode:
                sys.exit(f"{tree}: cae {' '.join(cmd)}: {r.stderr.strip()}")
            return time.perf_counter() - start

        for _ in range(args.runs):
            for n, tree in enumerate(trees):
                cae, png = f"{work}/{n}.cae", f"{work}/{n}.png"
                times[(tree, "encode")].append(run(tree, "encode", args.photo, "-o", cae, "-f"))
                times[(tree, "decode")].append(run(tree, "decode", cae, "-o", png, "-f"))
                digests[tree] = tuple(hashlib.sha256(Path(f).read_bytes()).hexdigest()[:16] for f in (cae, png))
    print(f"{Path(args.photo).name}, whole process, median of {args.runs}, alternated\n")
    print("| tree | encode s | decode s | .cae sha256 | PNG sha256 |\n|---|---:|---:|---|---|")
    for tree in trees:
        enc, dec = (statistics.median(times[(tree, k)]) for k in ("encode", "decode"))
        print(f"| {tree} | {enc:.3f} | {dec:.3f} | {digests[tree][0]} | {digests[tree][1]} |")


if __name__ == "__main__":
    main()
