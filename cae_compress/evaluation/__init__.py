"""Measuring codecs: ``cae bench`` (``bench``), the codecs compared with (``baselines``), MSE/PSNR/SSIM/BD-rate
(``metrics``), CompressAI-shaped result files (``results``) and ``cae inspect``'s figures (``visualize``)."""
