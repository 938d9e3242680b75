"""Training (TensorFlow): runs and their folders (``train``), data sets and tf.data pipelines (``data``),
tf.distribute strategies (``distribute``) and comparing finished runs (``runs``)."""
