"""Latent parts: how an entropy-coded model's codes meet their entropy model, one module per part.

A latent part is everything about the codes ``y`` given the hyper-codes:
their parameters (means, exact integer scale indices), their coding, the
likelihood training minimises and the integer arrays exported for the
runtime.  Each part answers :class:`~cae_compress.latent.base.LatentPart`;
the registry (``cae_compress.registry``) names an architecture's part, the
codec (``cae_compress.codecs.hyperprior``) composes it and the Keras model
(``cae_compress.models.hyperprior``) asks it for the likelihood.

* ``base``: the interface;
* ``mean_scale``: :class:`MeanScale`, the mean-scale hyperprior's (Minnen et al. 2018, no context);
* ``channel_context``: :class:`ChannelContext`, slices of channels coded given the slices before (Minnen & Singh 2020).

The runtime halves are NumPy and integers (no TensorFlow); the training
halves import TensorFlow inside the methods that need it.
"""
