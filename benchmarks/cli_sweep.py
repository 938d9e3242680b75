"""Every command against the places a run goes wrong: one line and a status, never a traceback, never a half-written file.

    python benchmarks/cli_sweep.py [--commands encode,decode,info,compare,demo,bench,export] [--keep DIR]

Commands: encode, decode, info, compare, demo, bench (a tiny run: two
images, one small model, JPEG only) and export (a copy of a small shipped
model; needs TensorFlow).  Cases: a read-only folder, a full file system, a
missing folder, a tiny image (1x1), an empty file, a folder where a file
is expected, ``/dev/full``, ``/dev/stdout`` and a symbolic link.  Where a
case does not apply to a command the table says n/a.

A read-only folder is a read-only bind mount, and a full file system a
small tmpfs filled up, each in a private mount namespace (``unshare -m``:
tests and sweeps run as root, where ``chmod`` does not stop writes);
without ``unshare`` the read-only case falls back to ``chmod 555`` and the
full case is skipped.

Prints a table: command, case, exit status, the first stderr line, whether
stderr holds a traceback, and temporary ``.part`` files left behind.
The exit status is 1 if any run printed a traceback or left a ``.part``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ("encode", "decode", "info", "compare", "demo", "bench", "export")
CASES = ("read-only dir", "full fs", "missing dir", "tiny image", "empty file", "dir as file", "/dev/full", "/dev/stdout", "symlink")
SMALL = "cifar10-64"  # the small shipped model where the model does not matter
NAMESPACES = shutil.which("unshare") is not None and os.geteuid() == 0


def make_fixtures(w: Path) -> None:
    """The files every case reads: images, .cae files, links, folders, a copy of a small model."""
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (16, 24, 3), dtype=np.uint8)).save(w / "photo.png")
    Image.fromarray(rng.integers(0, 255, (1, 1, 3), dtype=np.uint8)).save(w / "tiny.png")
    (w / "empty.png").write_bytes(b"")
    (w / "empty.cae").write_bytes(b"")
    (w / "empty.keras").write_bytes(b"")
    for d in ("ro", "full", "dirlike", "linked", "set", "tinyset", "emptyset"):
        (w / d).mkdir()
    cae(w, "encode", "photo.png", "-o", "photo.cae")
    cae(w, "encode", "tiny.png", "-o", "tiny.cae")
    for name in ("photo.png", "photo.cae"):
        shutil.copy(w / name, w / "ro" / name)
    (w / "real.cae").write_bytes(b"the file the link points to")
    (w / "real.png").write_bytes(b"the file the link points to")
    os.symlink("real.cae", w / "link.cae")
    os.symlink("real.png", w / "link.png")
    os.symlink("linked", w / "linkdir")
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(w / "set" / f"{i}.png")
    shutil.copy(w / "tiny.png", w / "tinyset" / "tiny.png")
    (w / "emptyset" / "empty.png").write_bytes(b"")
    os.symlink("set", w / "linkset")
    sys.path.insert(0, str(ROOT))  # this tree's package, as the runs below get through PYTHONPATH
    from cae_compress import zoo

    keras = zoo.shipped_models()[SMALL]
    shutil.copy(keras, w / "model.keras")
    shutil.copy(keras, w / "ro" / "model.keras")
    os.symlink("model.keras", w / "linkmodel.keras")


def cae(cwd: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "cae_compress", *args], cwd=cwd, check=True, capture_output=True, env=_env())


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


BENCH = ["bench", "--models", SMALL, "--baselines", "jpeg", "--limit", "2"]


def plan(command: str, case: str):
    """(arguments, where stdout goes: 'pipe' or '/dev/full', the folder mounted: 'ro', 'full' or None); None where the case does not apply."""
    table = {
        "encode": {
            "read-only dir": ["photo.png", "-o", "ro/x.cae"], "full fs": ["photo.png", "-o", "full/x.cae"],
            "missing dir": ["photo.png", "-o", "missing/x.cae"], "tiny image": ["tiny.png", "-o", "tiny-out.cae", "-f"],
            "empty file": ["empty.png"], "dir as file": ["dirlike"], "/dev/full": ["photo.png", "-o", "/dev/full"],
            "/dev/stdout": ["photo.png", "-o", "/dev/stdout"], "symlink": ["photo.png", "-o", "link.cae", "-f"],
        },
        "decode": {
            "read-only dir": ["photo.cae", "-o", "ro/x.png"], "full fs": ["photo.cae", "-o", "full/x.png"],
            "missing dir": ["photo.cae", "-o", "missing/x.png"], "tiny image": ["tiny.cae", "-o", "tiny-out.png", "-f"],
            "empty file": ["empty.cae"], "dir as file": ["dirlike"], "/dev/full": ["photo.cae", "-o", "/dev/full"],
            "/dev/stdout": ["photo.cae", "-o", "/dev/stdout"], "symlink": ["photo.cae", "-o", "link.png", "-f"],
        },
        "info": {
            "read-only dir": ["ro/photo.cae"], "missing dir": ["missing/x.cae"], "tiny image": ["tiny.cae"], "empty file": ["empty.cae"],
            "dir as file": ["dirlike"], "/dev/full": (["photo.cae"], "/dev/full"), "symlink": ["link.cae"],
        },
        "compare": {
            "read-only dir": ["photo.png", "-o", "ro/cmp"], "full fs": ["photo.png", "-o", "full/cmp"],
            "missing dir": ["photo.png", "-o", "missing/cmp"], "tiny image": ["tiny.png", "-o", "cmp-tiny"],
            "empty file": ["empty.png", "-o", "cmp-empty"], "dir as file": ["dirlike", "-o", "cmp-dir"],
            "/dev/full": ["photo.png", "-o", "/dev/full"], "/dev/stdout": ["photo.png", "-o", "/dev/stdout"],
            "symlink": ["photo.png", "-o", "linkdir"],
        },
        "demo": {
            "read-only dir": ["-o", "ro/demo"], "full fs": ["-o", "full/demo"], "missing dir": ["-o", "missing/demo"],
            "dir as file": ["-o", "real.cae"], "/dev/full": ["-o", "/dev/full"], "/dev/stdout": ["-o", "/dev/stdout"],
            "symlink": ["-o", "linkdir"],
        },
        "bench": {
            "read-only dir": ["--dataset", "set", "--results-dir", "ro/res"], "full fs": ["--dataset", "set", "--results-dir", "full/res"],
            "missing dir": ["--dataset", "missing/"], "tiny image": ["--dataset", "tinyset"], "empty file": ["--dataset", "emptyset"],
            "dir as file": ["--dataset", "set", "--compare", "dirlike"], "/dev/full": (["--dataset", "set"], "/dev/full"),
            "/dev/stdout": ["--dataset", "set", "--results-dir", "/dev/stdout"], "symlink": ["--dataset", "linkset"],
        },
        "export": {
            "read-only dir": ["--model-path", "ro/model.keras"], "missing dir": ["--model-path", "missing/model.keras"],
            "empty file": ["--model-path", "empty.keras"], "dir as file": ["--model-path", "dirlike"],
            "/dev/full": (["--model-path", "model.keras"], "/dev/full"), "symlink": ["--model-path", "linkmodel.keras"],
        },
    }
    found = table[command].get(case)
    if found is None:
        return None
    args, stdout = found if isinstance(found, tuple) else (found, "pipe")
    args = [a.replace("missing/", f"missing-{command}/") for a in args]  # a folder no earlier run (compare, demo) has made
    mount = "ro" if case == "read-only dir" else "full" if case == "full fs" else None
    return [command, *(BENCH[1:] if command == "bench" else []), *args], stdout, mount


def _mounted(argv: list[str], w: Path, mount: str | None) -> list[str] | None:
    """``argv`` run with ``w/ro`` read-only or ``w/full`` a full tmpfs, in a mount namespace of its own; None where that cannot be made."""
    if mount is None:
        return argv
    if not NAMESPACES:
        if mount == "ro":
            os.chmod(w / "ro", 0o555)
            return argv
        return None
    d = str(w / mount)
    if mount == "ro":
        setup = f"mount --bind {d} {d} && mount -o remount,bind,ro {d} {d}"
    else:
        setup = f"mount -t tmpfs -o size=256k tmpfs {d} && (cat /dev/zero > {d}/filler 2>/dev/null; true)"
    return ["unshare", "-m", "sh", "-c", f'{setup} && exec "$@"', "sh", *argv]


def run_case(w: Path, command: str, case: str) -> dict:
    planned = plan(command, case)
    if planned is None:
        return {"command": command, "case": case, "status": "n/a", "line": "", "traceback": "", "part": ""}
    args, stdout, mount = planned
    argv = _mounted([sys.executable, "-m", "cae_compress", *args], w, mount)
    if argv is None:
        return {"command": command, "case": case, "status": "skipped", "line": "(no mount namespace here)", "traceback": "", "part": ""}
    before = set(w.rglob("*.part*"))
    out = open(os.devnull if stdout == "pipe" else stdout, "wb") if stdout != "pipe" else subprocess.PIPE
    try:
        r = subprocess.run(argv, cwd=w, stdout=out, stderr=subprocess.PIPE, env={**_env(), "XDG_CACHE_HOME": str(w / "cache")}, timeout=600)
    finally:
        if out is not subprocess.PIPE:
            out.close()
    err = r.stderr.decode(errors="replace")
    lines = [line for line in err.splitlines() if line.strip()]
    first = next((line for line in lines if line.startswith("cae: error:")), lines[0] if lines else "")
    left = sorted(str(p.relative_to(w)) for p in set(w.rglob("*.part*")) - before)
    return {"command": command, "case": case, "status": str(r.returncode), "line": first[:150], "traceback": "yes" if "Traceback" in err else "no",
            "part": ", ".join(left)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--commands", default=",".join(COMMANDS))
    p.add_argument("--keep", default=None, help="Work in this folder (kept) instead of a temporary one.")
    args = p.parse_args()
    commands = [c.strip() for c in args.commands.split(",") if c.strip()]
    w = Path(args.keep or tempfile.mkdtemp(prefix="cae-sweep-")).resolve()
    w.mkdir(parents=True, exist_ok=True)
    make_fixtures(w)
    rows = []
    print("| command | case | exit | first stderr line | traceback | .part left |")
    print("|---|---|---|---|---|---|")
    for command in commands:
        for case in CASES:
            row = run_case(w, command, case)
            rows.append(row)
            print(f"| {row['command']} | {row['case']} | {row['status']} | {row['line'].replace('|', '/')} | {row['traceback']} | {row['part']} |", flush=True)
    os.chmod(w / "ro", 0o755)
    kept = all(os.path.islink(w / n) for n in ("link.cae", "link.png", "linkdir", "linkset", "linkmodel.keras"))
    devices = all(stat.S_ISCHR(os.stat(d).st_mode) for d in ("/dev/full", "/dev/null"))
    print(f"\nsymbolic links still links: {'yes' if kept else 'NO'}; /dev/full and /dev/null still character devices: {'yes' if devices else 'NO'}")
    if not args.keep:
        shutil.rmtree(w, ignore_errors=True)
    bad = [r for r in rows if r["traceback"] == "yes" or r["part"]] + ([] if kept and devices else ["links or devices replaced"])
    print(f"\n{len(rows)} runs, {sum(r['status'] not in ('n/a', 'skipped') for r in rows)} run; tracebacks: {sum(r['traceback'] == 'yes' for r in rows)}; "
          f".part files left: {sum(bool(r['part']) for r in rows)}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
