"""A toy model module for tests/test_toy_architecture.py: a tiny hyperprior-family Keras model whose codes the
``ScaleOnly`` latent part (tests/toy_scale_latent.py) codes, with one build option of its own."""

from __future__ import annotations

from dataclasses import dataclass

from cae_compress.models.hyperprior import build_hyperprior_model


@dataclass(frozen=True)
class ToyOptions:
    width: int = 8  # the transform width
    synthesis_widths: tuple[int, ...] | None = None


def build(input_shape, code_length, filters, l2_penalty, l1_code, options: ToyOptions = ToyOptions()):
    return build_hyperprior_model(options.width, code_length, 6, synthesis=options.synthesis_widths, arch="toy-scale", name="toy_scale")
