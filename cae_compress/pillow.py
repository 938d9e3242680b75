"""``.cae`` as a Pillow image format: ``import cae_compress.pillow`` (or ``cae_compress.register_opener()``).

As the plugins of the formats people use do (``pillow-avif-plugin``,
``pillow-jxl-plugin``, ``pillow-heif``), importing this module registers
open and save for ``.cae`` files (format ``CAE``, MIME ``image/x-cae``), so
that thumbnails, web frameworks, data loaders and notebooks read them with
no change:

>>> from PIL import Image
>>> import cae_compress.pillow
>>> Image.open("photo.cae").save("photo.png")
>>> Image.open("photo.png").save("small.cae", quality=30)   # or bpp=, effort=, model=

``Image.open`` reads the 76-byte header only (size and mode); the pixels
are decoded by ``load()``, through the same decode path as ``cae decode``
(``cae_compress.api``), with the model the file names.  A file that is not
a ``.cae`` (or whose header is cut short) is left to Pillow's other
plugins; Pillow's own ``Image.MAX_IMAGE_PIXELS`` guards the size, and this
package never changes it.

``Image.draft`` (Pillow's own convention for a cheaper decode, which
``Image.thumbnail`` calls) picks the model's fast synthesis, as ``cae decode
--fast`` does: the same symbols, checked alike, a cheaper synthesis at the
full size.  After ``load()``, ``im.info["synthesis"]`` says which ran
(``"fast"`` or ``"full"``; full where the model has no fast synthesis).

>>> im = Image.open("photo.cae"); im.thumbnail((256, 256))   # decoded through the fast synthesis
"""

from __future__ import annotations

import io
import os

from PIL import Image, ImageFile

from cae_compress import api
from cae_compress.errors import CaeError
from cae_compress.io import format as fmt

FORMAT = "CAE"
MIME = "image/x-cae"


def _accept(prefix: bytes) -> bool:
    return prefix[:4] == fmt.MAGIC


class CaeImageFile(ImageFile.ImageFile):
    format = FORMAT
    format_description = "cae_compress learned image codec"

    def _open(self) -> None:
        head = self.fp.read(fmt.HEADER_SIZE)
        try:
            header = fmt.parse_header(head, self.filename or "<image>", whole=False)
        except CaeError as exc:
            raise SyntaxError(exc.message) from None  # Pillow's way to say "not mine": it tries the other plugins
        self._size = (header.width, header.height)
        self._mode = "L" if header.channels == 1 else "RGB"
        self.info["model"] = header.model_name
        self.info["version"] = header.version
        self.tile = []  # decoded whole by load(), not tile by tile
        self._fast = False

    def draft(self, mode, size):
        """Ask for a cheaper decode (before ``load()``): the model's fast synthesis, at the full size and mode.

        Returns ``(mode, box)`` as Pillow's JPEG plugin does when it changes
        something (here the box is the whole image: the size does not
        change), None once loaded or when asked already.
        """
        if self._im is not None or self._fast:
            return None
        self._fast = True
        return self.mode, (0, 0, self.size[0], self.size[1])

    def load(self):
        if self._im is None:
            self.fp.seek(0)
            data = self.fp.read()
            w, h = self.size
            full = []
            try:  # admitted by Image.open's size check already: decode up to that size
                pixels = api.decode_data(data, str(self.filename or "<image>"), max_pixels=max(w * h, 1), fast=self._fast, on_full=full.append)
            except CaeError as exc:
                raise OSError(exc.message) from None
            self.info["synthesis"] = "fast" if self._fast and not full else "full"
            self.load_prepare()
            self.frombytes(pixels.tobytes())
            if self._exclusive_fp:
                self.fp.close()
            self.fp = None
        return Image.Image.load(self)


def open_image(source) -> Image.Image:
    """``cae_compress.open``: a PIL image of a ``.cae`` file (a path, bytes or a binary file object); pixels decoded on ``load()``."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(source))
    elif not isinstance(source, (str, os.PathLike)) and not hasattr(source, "read"):
        raise TypeError(f"source must be .cae bytes, a path or a binary file object, not {type(source).__name__}")
    return Image.open(source, formats=[FORMAT])


def _save(im: Image.Image, fp, filename) -> None:
    info = im.encoderinfo
    options = {k: info[k] for k in ("quality", "bpp", "effort", "model") if info.get(k) is not None}
    fp.write(api.compress(im, **options))


Image.register_open(FORMAT, CaeImageFile, _accept)
Image.register_save(FORMAT, _save)
Image.register_extension(FORMAT, ".cae")
Image.register_mime(FORMAT, MIME)
