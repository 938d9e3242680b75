"""Files and streams for ``encode``/``decode``: naming outputs, stdin/stdout, atomic writes.

Rules, as a user of gzip or cwebp expects them:

* ``-`` as an input reads stdin; ``-o -`` writes stdout (one input only).
  With stdin as input and no ``-o``, the output goes to stdout.
* Without ``-o``: ``img.png`` -> ``img.cae`` and ``img.cae`` -> ``img.png``,
  beside the input.  With several inputs, ``-o`` names a folder.
* An existing output is not overwritten without ``force``.
* Outputs are written to a temporary file in the same folder and renamed,
  so an interrupted or failed run leaves no half-written file.
* Binary data is never written to a terminal.
* A bad input is reported on stderr as one line and the others go on; the
  exit status is 2 if any input failed.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cae_compress.errors import BAD_INPUT, CaeError

STDIO = "-"


@dataclass
class Job:
    source: str  # a path or "-"
    target: str  # a path or "-"


def read_input(source: str) -> bytes:
    if source == STDIO:
        return sys.stdin.buffer.read()
    try:
        return Path(source).read_bytes()
    except IsADirectoryError:
        raise CaeError(f"{source}: is a directory") from None
    except OSError as exc:
        raise CaeError(f"{source}: cannot read ({exc.strerror})") from None


def write_output(target: str, data: bytes, force: bool = False) -> None:
    """Write ``data`` to ``target`` (``-`` for stdout) atomically, refusing to overwrite without ``force``."""
    if target == STDIO:
        out = sys.stdout.buffer
        out.write(data)
        out.flush()
        return
    path = Path(target)
    if path.exists() and not force:
        raise CaeError(f"{target}: already exists (use --force to overwrite)")
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    except OSError as exc:
        raise CaeError(f"{target}: cannot write ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        if force:
            os.replace(tmp, path)
        else:
            _create_exclusively(tmp, path, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _create_exclusively(tmp: str, path: Path, target: str) -> None:
    """Give the finished temporary file the name ``path`` only if nothing has it: of two writers, one wins.

    A hard link is created atomically and fails if the name exists; where the
    file system has no hard links, the rename after the check above is the
    fallback.
    """
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise CaeError(f"{target}: already exists (use --force to overwrite)") from None
    except OSError:
        os.replace(tmp, path)
        return
    Path(tmp).unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def plan(inputs: list[str], output: str | None, suffix: str) -> list[Job]:
    """Pair every input with its output path (see the module's rules)."""
    if not inputs:
        raise CaeError("no input files given")
    if inputs.count(STDIO) > 1:
        raise CaeError("'-' (stdin) can be given only once")
    many = len(inputs) > 1
    if output == STDIO and many:
        raise CaeError("-o - (stdout) takes a single input")
    out_dir = None
    if output not in (None, STDIO) and (many or Path(output).is_dir()):
        out_dir = Path(output)
        if out_dir.exists() and not out_dir.is_dir():
            raise CaeError(f"{output}: with several inputs, -o must be a folder")
        out_dir.mkdir(parents=True, exist_ok=True)
    jobs = []
    for src in inputs:
        if out_dir is not None:
            stem = "stdin" if src == STDIO else Path(src).stem
            target = str(out_dir / (stem + suffix))
        elif output is not None:
            target = output
        elif src == STDIO:
            target = STDIO
        else:
            target = str(Path(src).with_suffix(suffix))
        jobs.append(Job(src, target))
    targets = [j.target for j in jobs if j.target != STDIO]
    if len(set(targets)) != len(targets):
        raise CaeError("two inputs would write the same output file; use -o with separate names")
    if any(j.target == STDIO for j in jobs) and sys.stdout.isatty():
        raise CaeError("refusing to write binary data to a terminal; use -o FILE or a pipe")
    return jobs


def run_jobs(jobs: list[Job], work: Callable[[Job], None], show_progress: bool | None = None, desc: str = "") -> int:
    """Run ``work`` on each job; report each failure as one stderr line; return the exit status."""
    from tqdm import tqdm

    if show_progress is None:
        show_progress = sys.stderr.isatty() and len(jobs) > 1
    status = 0
    for job in tqdm(jobs, desc=desc, unit="file", disable=not show_progress, file=sys.stderr, leave=False):
        try:
            work(job)
        except CaeError as exc:
            label = "<stdin>" if job.source == STDIO else job.source
            message = exc.message if exc.message.startswith((label, job.target)) else f"{label}: {exc.message}"
            tqdm.write(f"cae: error: {message}", file=sys.stderr)
            status = max(status, exc.exit_code or BAD_INPUT)
    return status
