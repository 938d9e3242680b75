"""cae_compress: image compression with convolutional autoencoders.

>>> import cae_compress
>>> data = cae_compress.compress(image, quality=50)   # a path, a file object, a PIL image or an HxW[xC] uint8 array -> .cae bytes
>>> pixels = cae_compress.decompress(data)            # .cae bytes, a path or a file object -> (H, W, C) uint8 array
>>> im = cae_compress.open("photo.cae")               # -> PIL image (cae_compress.register_opener(): Image.open too)

Importing the package is cheap: these are loaded on first use, and
TensorFlow only by the modules that need it (models, training, --effort).
"""

__version__ = "0.5.0"

import os as _os

# TensorFlow and Keras print start-up chatter on stderr; a CLI keeps stderr for
# its own messages.  Users can still raise the level by setting these first.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
_os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__all__ = ["compress", "decompress", "open", "register_opener", "CaeError", "CaeWarning", "__version__"]


def register_opener() -> None:
    """Register ``.cae`` with Pillow (``Image.open``, ``Image.save``), as ``import cae_compress.pillow`` does."""
    import cae_compress.pillow  # noqa: F401


def __getattr__(name):  # the bytes API, loaded on first use (the CLI's start-up does not pay for it)
    if name in ("compress", "decompress"):
        from cae_compress import api

        return getattr(api, name)
    if name == "open":
        from cae_compress.pillow import open_image

        return open_image
    if name in ("CaeError", "CaeWarning"):
        from cae_compress import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'cae_compress' has no attribute {name!r}")
