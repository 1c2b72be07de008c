"""Generators and discriminators, chosen by `cfg.task` (see docs/models.md).

Every generator maps [0, 1] images of any size (a multiple of `generator_size_multiple(cfg)`) to [0, 1]
images `cfg.scale` times larger; discriminators map [0, 1] images to logits.
"""
from __future__ import annotations

from models.networks.deblur import DEBLUR_SIZE_MULTIPLE, build_deblur_generator, build_patchgan_critic
from models.networks.layers import custom_objects
from models.networks.sr import build_srgan_discriminator, build_srresnet

__all__ = ["build_generator", "build_discriminator", "generator_size_multiple", "custom_objects"]


def build_generator(cfg):
    """SRResNet (task "sr") or the DeblurGAN ResNet generator (task "deblur")."""
    return {"sr": build_srresnet, "deblur": build_deblur_generator}[cfg.task](cfg)


def build_discriminator(cfg):
    """SRGAN discriminator on `crop_size` crops ([N, 1] logits) or PatchGAN critic ([N, h, w, 1])."""
    return {"sr": build_srgan_discriminator, "deblur": build_patchgan_critic}[cfg.task](cfg)


def generator_size_multiple(cfg) -> int:
    """Input H and W must be multiples of this; models/export.py pads other sizes."""
    return DEBLUR_SIZE_MULTIPLE if cfg.task == "deblur" else 1
