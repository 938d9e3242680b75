"""Files and streams for ``encode``/``decode``: naming outputs, stdin/stdout, atomic writes.

Rules, as a user of gzip or cwebp expects them:

* ``-`` as an input reads stdin; ``-o -`` writes stdout (one input only).
  With stdin as input and no ``-o``, the output goes to stdout.
* Without ``-o``: ``img.png`` -> ``img.cae`` and ``img.cae`` -> ``img.png``,
  beside the input.  With several inputs, ``-o`` names a folder: an
  existing one, or a name ending in ``/``.
* An existing output is not overwritten without ``force``, and a default
  output name (no ``-o``) never replaces an existing file, even with
  ``force``: the user names a file with ``-o`` to replace it.  No output is
  ever the same file as an input (compared by device and inode, not name).
* Outputs are written to a temporary file in the same folder and renamed,
  so an interrupted or failed run leaves no half-written file.  An output
  that is a symbolic link gets the file it points to replaced (the
  temporary file beside that file); a character device, a FIFO or
  ``/dev/stdout`` is written through (opened and written, never renamed).
* Binary data is never written to a terminal.
* A file system that refuses (read-only, full, no permission) is one
  :class:`CaeError` naming the file, never a traceback.
* A bad input is reported on stderr as one line and the others go on; the
  exit status is 2 if any input failed.
"""

from __future__ import annotations

import os
import stat
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
    named: bool = True  # the user named the output (-o FILE or a file in -o FOLDER): --force may replace it


def read_input(source: str) -> bytes:
    if source == STDIO:
        return sys.stdin.buffer.read()
    try:
        return Path(source).read_bytes()
    except IsADirectoryError:
        raise CaeError(f"{source}: is a directory") from None
    except OSError as exc:
        raise CaeError(f"{source}: cannot read ({exc.strerror})") from None


def write_output(target: str, data: bytes, force: bool = False, named: bool = True) -> None:
    """Write ``data`` to ``target`` (``-`` for stdout), by the module's rules: atomically, through links and devices, replacing only what may be."""
    if target == STDIO:
        _write_to_stdout(target, data)
        return
    if writes_through(target):
        _write_through(target, data)
        return
    check_replaceable(target, force, named)
    atomic_write(target, data, overwrite=force and named)


def check_replaceable(target: str, force: bool, named: bool = True) -> None:
    """Refuse to replace an existing ``target`` without ``force``, a file under a default name at all, and anything not a regular file."""
    if target == STDIO or writes_through(target) or not os.path.lexists(target):
        return
    if os.path.exists(target) and not os.path.isfile(target):
        raise CaeError(f"{target}: exists and is not a regular file; refusing to replace it")
    if not named:
        raise CaeError(f"{target}: already exists (a default output name never replaces a file, even with --force; to replace it, name it: -o {target} --force)")
    if not force:
        raise CaeError(f"{target}: already exists (use --force to overwrite)")


_FD_NAMES = {"/dev/stdout": 1, "/dev/stderr": 2}


def _fd_of(target: str) -> int | None:
    """The file descriptor that ``/dev/stdout``, ``/dev/fd/N`` or ``/proc/self/fd/N`` name, else None."""
    if target in _FD_NAMES:
        return _FD_NAMES[target]
    for prefix in ("/dev/fd/", "/proc/self/fd/"):
        if target.startswith(prefix) and target[len(prefix):].isdigit():
            return int(target[len(prefix):])
    return None


def writes_through(target: str) -> bool:
    """Whether ``target`` is written through, not replaced: ``/dev/stdout`` and its kin, a character device, a FIFO."""
    if target == STDIO:
        return False
    if _fd_of(target) is not None:
        return True
    try:
        mode = os.stat(target).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def _write_through(target: str, data: bytes) -> None:
    fd = _fd_of(target)
    if fd == 1:
        _write_to_stdout(target, data)
        return
    try:
        fd = os.dup(fd) if fd is not None else os.open(target, os.O_WRONLY)  # no O_CREAT, no O_TRUNC: written, never made or replaced
    except OSError as exc:
        raise CaeError(f"{target}: cannot write ({exc.strerror})") from None
    try:
        if os.isatty(fd):
            raise CaeError(f"{target}: refusing to write binary data to a terminal; use -o FILE or a pipe")
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except OSError as exc:
        raise CaeError(f"{target}: cannot write ({exc.strerror})") from None
    finally:
        os.close(fd)


def _write_to_stdout(target: str, data: bytes) -> None:
    """``-o -`` and ``-o /dev/stdout``: Python's stdout (what a caller may have replaced), never a terminal; a failure is one CaeError."""
    if sys.stdout.isatty():
        raise CaeError("refusing to write binary data to a terminal; use -o FILE or a pipe")
    try:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except OSError as exc:
        silence_stdout()
        raise CaeError(f"stdout: cannot write ({exc.strerror or exc})") from None


def silence_stdout() -> None:
    """Point file descriptor 1 at /dev/null: what is left in stdout's buffer goes nowhere at exit (no second error, no 'Exception ignored')."""
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError):  # a stdout with no descriptor (a test's capture): nothing to silence
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def atomic_write(path: str | Path, data: bytes | None = None, *, write: Callable[[Path], None] | None = None, overwrite: bool = True,
                 label: str | None = None) -> Path:
    """Write the file ``path`` whole or not at all: every file this package writes goes through here.

    The bytes ``data`` (or whatever ``write(tmp)`` writes to the path it is
    given, for writers that want a path: Keras, NumPy, Pillow, Matplotlib)
    go to a temporary ``.NAME.*.part<suffix>`` beside ``path``, which then
    takes the name; an interrupted or failed write leaves no half-written
    file.  Without ``overwrite``, of two writers of one name one wins and
    the other gets a :class:`CaeError`.  A file system that refuses (read
    only, full, no permission) is a :class:`CaeError` naming ``label``
    (default ``path``).  A symbolic link gets the file it points to
    replaced; a device, a FIFO or a folder is refused, never renamed over.
    """
    given = Path(path)
    label = label or str(given)
    path = Path(os.path.realpath(given)) if os.path.islink(given) else given  # a link: the file it points to is replaced
    if os.path.exists(path) and not os.path.isfile(path):  # a device, a FIFO, a folder: never renamed over
        raise CaeError(f"{label}: exists and is not a regular file; refusing to replace it")
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".part{path.suffix}", dir=folder)
    except OSError as exc:
        raise CaeError(f"{label}: cannot write ({exc.strerror})") from None
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
            _create_exclusively(tmp, path, label)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise CaeError(f"{label}: cannot write ({exc.strerror or exc})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return given


def make_folder(path: str | Path) -> Path:
    """``mkdir -p``, with a file system's refusal as one CaeError."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise CaeError(f"{path}: exists and is not a folder") from None
    except OSError as exc:
        raise CaeError(f"{path}: cannot create the folder ({exc.strerror})") from None
    return Path(path)


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


def _expand(src: str, recursive: bool, wanted, what: str, quiet: bool = False) -> list[tuple[str, Path | None]]:
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
        elif not quiet:
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


def identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of the file ``path`` names (through links), None if there is none: what tells two names of one file apart."""
    if path == STDIO:
        return None
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def same_file(source: str, target: str) -> bool:
    """Whether ``target`` names the file ``source`` (so writing it would destroy the input): by device and inode, not by name."""
    found = identity(source)
    return found is not None and found == identity(target)


def _refuse_in_out_habit(inputs: list[str], encoding: bool) -> None:
    """``cae encode in.png out.cae`` (cjxl's and avifenc's habit): a missing last input with the other command's suffix is meant as -o."""
    last = inputs[-1]
    other = {".cae"} if encoding else IMAGE_SUFFIXES
    if len(inputs) >= 2 and last != STDIO and Path(last).suffix.lower() in other and not os.path.lexists(last):
        raise CaeError(f"{last}: no such input; did you mean -o {last}?")


def _output_folder(output: str, several: bool) -> Path:
    """The folder ``-o`` names for several outputs: an existing one or a name ending in '/' (created)."""
    is_folder = Path(output).is_dir() or output.endswith(("/", os.sep))
    if several and not is_folder:
        raise CaeError(f"{output}: with several inputs, -o must be a folder: an existing one, or a name ending in '/' (-o {output}/)")
    if os.path.lexists(output) and not Path(output).is_dir():
        raise CaeError(f"{output}: with several inputs, -o must be a folder")
    return make_folder(output)


def _refuse_outputs_that_are_inputs(jobs: list[Job], sources) -> None:
    """No output may be the file of another input (hard links and symbolic links included); its own input is refused as its job runs."""
    inputs = {identity(src): src for src, _ in sources}
    inputs.pop(None, None)
    for job in jobs:
        hit = inputs.get(identity(job.target)) if job.target != STDIO else None
        if hit is not None and not same_file(job.source, hit):
            raise CaeError(f"{hit}: the output would overwrite the input itself ({job.target}); choose another name with -o")


def plan(inputs: list[str], output: str | None, suffix: str, recursive: bool = False, quiet: bool = False) -> list[Job]:
    """Pair every input with its output path (see the module's rules).

    ``suffix`` is ``.cae`` for encoding and an image suffix for decoding;
    with ``recursive``, a folder stands for every image (encoding) or
    ``.cae`` file (decoding) under it, and ``-o`` mirrors its tree.
    ``quiet``: no warnings for the files skipped under a folder.
    """
    if not inputs:
        raise CaeError("no input files given")
    if inputs.count(STDIO) > 1:
        raise CaeError("'-' (stdin) can be given only once")
    encoding = suffix == ".cae"
    _refuse_in_out_habit(inputs, encoding)
    wanted = (lambda p: p.suffix.lower() in IMAGE_SUFFIXES) if encoding else (lambda p: p.suffix.lower() == ".cae")
    sources = [item for src in inputs for item in _expand(src, recursive, wanted, "encode" if encoding else "decode", quiet)]
    if not sources:
        raise CaeError(f"no {'images' if encoding else '.cae files'} found under {', '.join(inputs)}")
    many = len(sources) > 1 or any(rel is not None for _, rel in sources)
    if output == STDIO and many:
        raise CaeError("-o - (stdout) takes a single input")
    out_dir = None
    if output not in (None, STDIO) and (many or Path(output).is_dir() or output.endswith(("/", os.sep))):
        out_dir = _output_folder(output, several=len(inputs) > 1)
    jobs = []
    for src, rel in sources:
        if src == STDIO:
            name = Path("stdin")
        else:
            name = rel if rel is not None else Path(Path(src).name or Path(src).resolve().name)
        if out_dir is not None:
            target = str(out_dir / name.with_name(name.stem + suffix))
            make_folder(Path(target).parent)  # -r: the input's tree, mirrored
        elif output is not None:
            target = output
        elif src == STDIO:
            target = STDIO
        else:
            target = str(Path(src).with_name(Path(src).stem + suffix))
        jobs.append(Job(src, target, named=output is not None))
    targets = [j.target for j in jobs if j.target != STDIO]
    if len(set(targets)) != len(targets):
        raise CaeError("two inputs would write the same output file; use -o with separate names")
    _refuse_outputs_that_are_inputs(jobs, sources)
    if not encoding and output not in (None, STDIO) and out_dir is None and not writes_through(output):
        check_image_suffix(output)
    if any(j.target == STDIO for j in jobs) and sys.stdout.isatty():
        raise CaeError("refusing to write binary data to a terminal; use -o FILE or a pipe")
    return jobs


def run_jobs(jobs: list[Job], work: Callable[[Job], str | None], show_progress: bool | None = None, desc: str = "", summary: bool = False, pool=None,
             verbose: bool = False) -> int:
    """Run ``work`` on each job; report each failure as one stderr line; return the exit status.

    With ``summary``, a last stderr line gives the files done, bytes in and out
    and their ratio.  With ``pool`` (an executor), the jobs run there, and are
    reported here in their order.  With ``verbose``, what ``work`` returns (a
    line on the file done) goes to stderr.
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
            note = work(job)
            done += 1
            if verbose and note:
                write(f"cae: {note}", file=sys.stderr)
            if summary and STDIO not in (job.source, job.target):
                bytes_in += Path(job.source).stat().st_size
                bytes_out += Path(job.target).stat().st_size
        except CaeError as exc:
            label = "<stdin>" if job.source == STDIO else job.source
            message = exc.message if exc.message.startswith((label, job.target)) else f"{label}: {exc.message}"
            write(f"cae: error: {message}", file=sys.stderr)
            status = max(status, exc.exit_code or BAD_INPUT)
        except OSError as exc:  # a file system's refusal the work did not name: still one line, and the others go on
            label = "<stdin>" if job.source == STDIO else job.source
            write(f"cae: error: {exc.filename or label}: {exc.strerror or exc}", file=sys.stderr)
            status = max(status, BAD_INPUT)
    if summary:  # the ratio is image bytes over .cae bytes, both ways
        small, large = (bytes_out, bytes_in) if desc == "encode" else (bytes_in, bytes_out)
        ratio = f"{large / small:.2f}" if small else "-"
        print(f"cae: {desc}: {done} of {len(jobs)} files, {bytes_in} bytes in, {bytes_out} bytes out, ratio {ratio}", file=sys.stderr)
    return status
