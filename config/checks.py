"""Checks of a configuration, run when a `Config` is built: a bad setting fails in the first second
with one line naming it, not deep inside a component.

`check_fields` (types, bounds and enumerations declared on the fields of config/sections.py),
`check_rules` (settings that depend on each other) and, for a run on this machine, `check_local_run`
(files the run will read: the data root and the VGG weights of a perceptual loss).
"""
from __future__ import annotations

import dataclasses
import os
import re

from config import sections
from config.errors import UserError

KIND_WORDS = {"bool": "a boolean", "int": "an integer", "float": "a number", "str": "a string",
              "tuple": "a list of strings"}


class ConfigError(ValueError, UserError):
    """A setting that cannot work; the message names the setting."""


def check_fields(section_name: str, section) -> None:
    for f in dataclasses.fields(section):
        key, value = f"{section_name}.{f.name}" if section_name else f.name, getattr(section, f.name)
        _check_type(key, value, f.type)
        m = f.metadata
        if value is None:
            continue
        if "choices" in m and value not in m["choices"]:
            raise ConfigError(f"{key} must be one of {', '.join(map(repr, m['choices']))}; got {value!r}")
        for bound, ok, word in (("min", lambda v, b: v >= b, ">="), ("max", lambda v, b: v <= b, "<="),
                                ("above", lambda v, b: v > b, ">"), ("below", lambda v, b: v < b, "<")):
            if bound in m and not ok(value, m[bound]):
                raise ConfigError(f"{key} must be {word} {m[bound]}; got {value!r}")


def _check_type(key: str, value, annotation: str) -> None:
    types = [t.strip() for t in str(annotation).split("|")]
    if value is None and "None" in types:
        return
    kind = types[0]
    if kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind == "str":
        ok = isinstance(value, str)
    elif kind == "tuple":
        ok = isinstance(value, tuple) and all(isinstance(v, str) for v in value)
    else:
        return  # a section: checked field by field
    if not ok:
        raise ConfigError(f"{key} must be {KIND_WORDS[kind]}; got {value!r}")


def check_rules(cfg) -> None:
    """Cross-field rules; `cfg` is a Config whose fields passed `check_fields`."""
    d, t = cfg.data, cfg.train
    if cfg.task not in sections.TASKS:
        raise ConfigError(f"task must be one of {', '.join(map(repr, sections.TASKS))}; got {cfg.task!r}")
    if cfg.task == "sr" and d.crop_size % cfg.model.scale:
        raise ConfigError(f"data.crop_size {d.crop_size} is not a multiple of scale {cfg.model.scale}")
    if cfg.task == "sr" and cfg.train_patch % cfg.model.scale:
        raise ConfigError(f"train.patch_size {t.patch_size} is not a multiple of scale {cfg.model.scale}")
    if d.blur_kernel_size % 2 == 0:
        raise ConfigError(f"data.blur_kernel_size must be odd (a kernel centred on a pixel); got {d.blur_kernel_size}")
    if t.warmup_steps + t.gan_steps < 1:
        raise ConfigError("train.warmup_steps + train.gan_steps must be >= 1 (nothing would be trained)")
    if t.lr_schedule == "step" and t.lr_decay_steps < 1:
        raise ConfigError("train.lr_schedule=step halves the rate every train.lr_decay_steps: set it >= 1")
    for name in ("serving", "export"):  # the client's tiles and the served graph's
        tiles = getattr(cfg, name)
        if tiles.tile_size and tiles.tile_overlap >= tiles.tile_size:
            raise ConfigError(f"{name}.tile_overlap {tiles.tile_overlap} must be smaller than "
                              f"{name}.tile_size {tiles.tile_size}")
    check_cron(cfg.kubeflow.cron, "kubeflow.cron")
    check_kubeflow_trainer(cfg)


# Kubernetes label keys and values (apimachinery's IsQualifiedName / IsValidLabelValue).
_LABEL_NAME = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def check_kubeflow_trainer(cfg) -> None:
    """The Trainer's placement and workers on the cluster: a node label that Kubernetes accepts, a
    GPU type only for a Trainer that asks for GPUs, a global batch that splits over every replica."""
    k = cfg.kubeflow
    prefix, _, name = k.accelerator_label.rpartition("/")
    if not name or not _LABEL_NAME.match(name) or (prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix))):
        raise ConfigError(f"kubeflow.accelerator_label must be a Kubernetes label key ([prefix/]name); "
                          f"got {k.accelerator_label!r}")
    if not _LABEL_NAME.match(k.trainer_accelerator):
        raise ConfigError(f"kubeflow.trainer_accelerator must be a Kubernetes label value (<= 63 letters, "
                          f"digits, '-', '_', '.'); got {k.trainer_accelerator!r}")
    if k.trainer_accelerator and not k.trainer_gpus:
        raise ConfigError(f"kubeflow.trainer_accelerator={k.trainer_accelerator} selects GPU nodes for a Trainer "
                          f"that asks for none (kubeflow.trainer_gpus=0)")
    replicas = k.trainer_workers * max(k.trainer_gpus, 1)
    if k.trainer_workers > 1 and cfg.train.batch_size % replicas:
        raise ConfigError(f"train.batch_size {cfg.train.batch_size} does not split over {k.trainer_workers} "
                          f"workers x {max(k.trainer_gpus, 1)} replica(s) each (kubeflow.trainer_workers, "
                          f"kubeflow.trainer_gpus)")


# KFP's scheduled workflows use 6-field cron (seconds first): "0 0 3 * * 0" is Sunday 03:00:00.
CRON_FIELDS = 6


def check_cron(cron: str, key: str = "cron") -> str:
    if len(cron.split()) != CRON_FIELDS:
        raise ConfigError(f"{key} needs {CRON_FIELDS} fields (seconds minutes hours day-of-month month "
                          f"day-of-week), as KFP's scheduler reads it; got {cron!r}")
    return cron


def perceptual_enabled(cfg) -> bool:
    return bool(cfg.loss.perceptual_net) and cfg.loss.perceptual_weight > 0


def check_local_run(cfg) -> None:
    """What a run on this machine will read: the data root, and the VGG weights when a perceptual loss
    is trained (the GAN phase). Not part of building a Config, which may describe another machine's
    run (a Kubeflow package is compiled where neither the data nor the weights are)."""
    from config.vgg_weights import resolve_weights

    if not cfg.data.root:
        raise ConfigError("data.root is empty: set it to the folder that holds the images")
    if "://" not in cfg.data.root and not os.path.isdir(cfg.data.root):
        raise ConfigError(f"data.root {cfg.data.root!r} is not a directory")
    start = cfg.train.warm_start_from
    if cfg.train.warm_start and start and "://" not in start and not os.path.isdir(start):
        raise ConfigError(f"train.warm_start_from {start!r} is not a directory (a SavedModel or a serving base)")
    if perceptual_enabled(cfg) and cfg.train.gan_steps and not cfg.loss.allow_random_vgg:
        try:
            resolve_weights(cfg.loss.perceptual_net, cfg.loss.vgg_weights)
        except FileNotFoundError as e:
            raise ConfigError(f"loss.perceptual_net={cfg.loss.perceptual_net}: {e}") from None
