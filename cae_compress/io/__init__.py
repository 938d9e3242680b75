"""The container and I/O, no TensorFlow: the ``.cae`` bytes (``format``), input and output files (``files``),
image files through Pillow (``images``) and pixel value ranges (``pixels``).

The limits every reader shares are defined here once (no imports, so the CLI
can show them in ``--help`` at no start-up cost).
"""

MAX_PIXELS = 256 * 1024 * 1024  # an input image or a .cae file declaring more pixels is refused outright
DEFAULT_MAX_PIXELS = 2 * 89_478_485  # decode budget (cae decode --max-pixels): Pillow's decompression-bomb limit, about 179 MP
NAME_BYTES = 24  # the .cae header keeps this many bytes of the model name
