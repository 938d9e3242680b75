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

from PIL import Image

from cae_compress.errors import BAD_INPUT, CaeError
from cae_compress.io.images import IMAGE_SUFFIXES

# tqdm is imported only when a progress bar shows (~25 ms of a one-file command); Pillow's plugins only when asked for.

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
    if Path(target).exists() and not force:
        raise CaeError(f"{target}: already exists (use --force to overwrite)")
    atomic_write(target, data, overwrite=force)


def atomic_write(path: str | Path, data: bytes | None = None, *, write: Callable[[Path], None] | None = None, overwrite: bool = True) -> Path:
    """Write the file ``path`` whole or not at all: every file this package writes goes through here.

    The bytes ``data`` (or whatever ``write(tmp)`` writes to the path it is
    given, for writers that want a path: Keras, NumPy, Pillow, Matplotlib)
    go to a temporary ``.NAME.*.part<suffix>`` beside ``path``, which then
    takes the name; an interrupted or failed write leaves no half-written
    file.  Without ``overwrite``, of two writers of one name one wins and
    the other gets a :class:`CaeError`.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".part{path.suffix}", dir=folder)
    except OSError as exc:
        raise CaeError(f"{path}: cannot write ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            if write is None:
                f.write(data)
        if write is not None:
            write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        if overwrite:
            os.replace(tmp, path)
        else:
            _create_exclusively(tmp, path, str(path))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


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


def _expand(src: str, recursive: bool, wanted, what: str) -> list[tuple[str, Path | None]]:
    """``src`` as (file, path relative to its folder or None): itself, or with -r every wanted file under it."""
    if src == STDIO or not Path(src).is_dir():
        return [(src, None)]
    if not recursive:
        raise CaeError(f"{src}: is a directory (use -r to {what} every file under it)")
    found = []
    for p in sorted(Path(src).rglob("*")):
        if not p.is_file() or p.name.startswith("."):
            continue
        if wanted(p):
            found.append((str(p), p.relative_to(src)))
        else:
            print(f"cae: warning: {p}: skipped (not {'an image' if what == 'encode' else 'a .cae file'})", file=sys.stderr)
    return found


def writable_suffixes(every_plugin: bool = True) -> list[str]:
    """Image suffixes Pillow can write, e.g. ``.png``, ``.webp``, ``.jpg``.

    Without ``every_plugin``, only those of the formats Pillow loads first
    (PNG, JPEG, BMP, GIF, PPM): loading every plugin costs a command ~40 ms.
    """
    Image.init() if every_plugin else Image.preinit()
    return sorted(ext for ext, fmt in Image.EXTENSION.items() if fmt in Image.SAVE)


def check_image_suffix(target: str) -> None:
    """Refuse an output name whose suffix no image writer knows (``a.xyz``), naming those that work."""
    if target == STDIO:
        return
    suffix = Path(target).suffix.lower()
    if suffix not in writable_suffixes(every_plugin=False) and suffix not in writable_suffixes():
        common = ", ".join(s for s in (".png", ".webp", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".avif") if s in writable_suffixes())
        raise CaeError(f"{target}: cannot write images with suffix '{suffix or '(none)'}' (use {common}, ...)")


def same_file(source: str, target: str) -> bool:
    """Whether ``target`` names the file ``source`` (so writing it would destroy the input)."""
    if STDIO in (source, target):
        return False
    try:
        return Path(source).resolve() == Path(target).resolve()
    except OSError:
        return False


def plan(inputs: list[str], output: str | None, suffix: str, recursive: bool = False) -> list[Job]:
    """Pair every input with its output path (see the module's rules).

    ``suffix`` is ``.cae`` for encoding and an image suffix for decoding;
    with ``recursive``, a folder stands for every image (encoding) or
    ``.cae`` file (decoding) under it, and ``-o`` mirrors its tree.
    """
    if not inputs:
        raise CaeError("no input files given")
    if inputs.count(STDIO) > 1:
        raise CaeError("'-' (stdin) can be given only once")
    encoding = suffix == ".cae"
    wanted = (lambda p: p.suffix.lower() in IMAGE_SUFFIXES) if encoding else (lambda p: p.suffix.lower() == ".cae")
    sources = [item for src in inputs for item in _expand(src, recursive, wanted, "encode" if encoding else "decode")]
    if not sources:
        raise CaeError(f"no {'images' if encoding else '.cae files'} found under {', '.join(inputs)}")
    many = len(sources) > 1 or any(rel is not None for _, rel in sources)
    if output == STDIO and many:
        raise CaeError("-o - (stdout) takes a single input")
    out_dir = None
    if output not in (None, STDIO) and (many or Path(output).is_dir()):
        out_dir = Path(output)
        if out_dir.exists() and not out_dir.is_dir():
            raise CaeError(f"{output}: with several inputs, -o must be a folder")
        out_dir.mkdir(parents=True, exist_ok=True)
    jobs = []
    for src, rel in sources:
        if src == STDIO:
            name = Path("stdin")
        else:
            name = rel if rel is not None else Path(Path(src).name or Path(src).resolve().name)
        if out_dir is not None:
            target = str(out_dir / name.with_name(name.stem + suffix))
            Path(target).parent.mkdir(parents=True, exist_ok=True)  # -r: the input's tree, mirrored
        elif output is not None:
            target = output
        elif src == STDIO:
            target = STDIO
        else:
            target = str(Path(src).with_name(Path(src).stem + suffix))
        jobs.append(Job(src, target))
    targets = [j.target for j in jobs if j.target != STDIO]
    if len(set(targets)) != len(targets):
        raise CaeError("two inputs would write the same output file; use -o with separate names")
    if not encoding and output not in (None, STDIO) and out_dir is None:
        check_image_suffix(output)
    if any(j.target == STDIO for j in jobs) and sys.stdout.isatty():
        raise CaeError("refusing to write binary data to a terminal; use -o FILE or a pipe")
    return jobs


def run_jobs(jobs: list[Job], work: Callable[[Job], None], show_progress: bool | None = None, desc: str = "", summary: bool = False, pool=None) -> int:
    """Run ``work`` on each job; report each failure as one stderr line; return the exit status.

    With ``summary``, a last stderr line gives the files done, bytes in and out
    and their ratio.  With ``pool`` (an executor), the jobs run there, and are
    reported here in their order.
    """
    if pool is not None:
        futures = {id(job): pool.submit(work, job) for job in jobs}
        work = lambda job: futures[id(job)].result()  # noqa: E731  (a worker's CaeError is raised here)
    if show_progress is None:
        show_progress = sys.stderr.isatty() and len(jobs) > 1
    if show_progress:
        from tqdm import tqdm

        jobs_seen, write = tqdm(jobs, desc=desc, unit="file", file=sys.stderr, leave=False), tqdm.write
    else:  # no bar: tqdm is not even imported (~25 ms of a one-file command)
        jobs_seen, write = jobs, print
    status, done, bytes_in, bytes_out = 0, 0, 0, 0
    for job in jobs_seen:
        try:
            work(job)
            done += 1
            if summary and STDIO not in (job.source, job.target):
                bytes_in += Path(job.source).stat().st_size
                bytes_out += Path(job.target).stat().st_size
        except CaeError as exc:
            label = "<stdin>" if job.source == STDIO else job.source
            message = exc.message if exc.message.startswith((label, job.target)) else f"{label}: {exc.message}"
            write(f"cae: error: {message}", file=sys.stderr)
            status = max(status, exc.exit_code or BAD_INPUT)
    if summary:  # the ratio is image bytes over .cae bytes, both ways
        small, large = (bytes_out, bytes_in) if desc == "encode" else (bytes_in, bytes_out)
        ratio = f"{large / small:.2f}" if small else "-"
        print(f"cae: {desc}: {done} of {len(jobs)} files, {bytes_in} bytes in, {bytes_out} bytes out, ratio {ratio}", file=sys.stderr)
    return status
