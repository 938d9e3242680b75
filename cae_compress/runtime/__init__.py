"""Running a model's networks: the files beside a model (``files``), LiteRT (``litert``, no TensorFlow) and Keras (``keras_nets``).

A codec (``cae_compress.codecs``) gets its networks as callables on float32
NHWC arrays from either backend; ``cae_compress.zoo.load`` puts them together.
"""
