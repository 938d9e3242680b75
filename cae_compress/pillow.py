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

``Image.open`` reads the 76-byte header only (size and mode; a version 4
file, with metadata or alpha, whole: its chunks); the pixels
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

Metadata and alpha, as Pillow's AVIF and WebP plugins have them: a file's
ICC profile, EXIF and XMP are in ``im.info`` (``icc_profile``, ``exif``,
``xmp``) from ``Image.open`` on, and a file with alpha opens as RGBA (LA for
grayscale).  ``save`` writes alpha always, the ICC profile of
``icc_profile=`` or else of ``im.info``, and EXIF and XMP of ``exif=``
(bytes or an ``Image.Exif``) and ``xmp=``; any other option (``lossless=``,
say) raises ValueError rather than being ignored.
"""

from __future__ import annotations

import io
import os

from PIL import Image, ImageFile

from cae_compress import api
from cae_compress.errors import CaeError
from cae_compress.io import format as fmt
from cae_compress.io.images import carried, turned

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
        alpha = False
        if header.version >= 4:  # chunks: metadata and alpha are known from the whole file (checked, CRCs and all)
            try:
                header, extras = fmt.parse_extras(head + self.fp.read(), self.filename or "<image>")
                self.info.update(extras.info())
                alpha = extras.alpha is not None
            except CaeError:
                pass  # a .cae whose chunks are broken: load() says how (OSError), as for a file cut short after its header
        self._size = (header.width, header.height)
        self._mode = ("LA" if alpha else "L") if header.channels == 1 else ("RGBA" if alpha else "RGB")
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


OPTIONS = ("quality", "bpp", "effort", "model")
METADATA = ("icc_profile", "exif", "xmp")


def _save(im: Image.Image, fp, filename) -> None:
    info = im.encoderinfo
    unknown = sorted(k for k in info if k not in OPTIONS + METADATA)
    if unknown:
        raise ValueError(f"unknown save option{'s' * (len(unknown) > 1)} for .cae: {', '.join(unknown)} (it takes {', '.join(OPTIONS + METADATA)}; .cae has no lossless mode)")
    options = {k: info[k] for k in OPTIONS if info.get(k) is not None}
    pixels, own = api.as_picture(im)  # reductions (16 bits, frames, CMYK) are said as warnings
    # the options' EXIF and XMP; the pixels are turned as im's own EXIF says, so the orientation written is 1
    extras = carried(info.get("icc_profile") or own.icc_profile, info.get("exif"), info.get("xmp"), turned(im))  # im.info's profile (a CMYK image's is dropped)
    fp.write(api.compress_picture(pixels, extras, **options))


Image.register_open(FORMAT, CaeImageFile, _accept)
Image.register_save(FORMAT, _save)
Image.register_extension(FORMAT, ".cae")
Image.register_mime(FORMAT, MIME)
