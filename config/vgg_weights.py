"""Where the ImageNet VGG weights for the perceptual loss are found (nothing is ever downloaded).

`loss.vgg_weights` (a file, or a folder holding the standard file name), else the standard Keras file
name in `$KERAS_HOME/models` and `~/.keras/models`. Here, below the models, so that a run checks the
file when its configuration is built, before any component starts; models/vgg.py loads it.
"""
from __future__ import annotations

import os

from config.errors import MissingFileError

# The file names Keras itself writes for `VGG16/VGG19(include_top=False, weights="imagenet")`.
WEIGHT_FILES = {
    "vgg16": "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "vgg19": "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
}
_URL = "https://storage.googleapis.com/tensorflow/keras-applications/{net}/{file}"


def check_net(net: str) -> None:
    if net not in WEIGHT_FILES:
        raise ValueError(f"unknown VGG {net!r}; use one of {sorted(WEIGHT_FILES)}")


def standard_locations(net: str) -> list:
    """Where Keras keeps downloaded weights: $KERAS_HOME/models (when set), then ~/.keras/models."""
    check_net(net)
    dirs = []
    if os.environ.get("KERAS_HOME"):
        dirs.append(os.path.join(os.environ["KERAS_HOME"], "models"))
    dirs.append(os.path.join(os.path.expanduser("~"), ".keras", "models"))
    return [os.path.join(d, WEIGHT_FILES[net]) for d in dirs]


def resolve_weights(net: str, explicit: str = "") -> str:
    """The weights file to load: `explicit` (a file, or a folder with the standard name) when given,
    else the first standard location that exists. Raises MissingFileError (a FileNotFoundError) saying
    what to do."""
    check_net(net)
    name = WEIGHT_FILES[net]
    if explicit:
        path = os.path.join(explicit, name) if os.path.isdir(explicit) else explicit
        if os.path.isfile(path):
            return path
        candidates = [path]
    else:
        candidates = standard_locations(net)
        for path in candidates:
            if os.path.isfile(path):
                return path
    raise MissingFileError(
        f"the perceptual loss needs the ImageNet {net.upper()} weights file {name!r}, and nothing is "
        f"downloaded at run time. Looked for: {', '.join(candidates)}. Copy the file (from "
        f"{_URL.format(net=net, file=name)}, or from ~/.keras/models of a machine where "
        f"keras.applications.{net.upper()}(include_top=False, weights='imagenet') has run) into "
        f"~/.keras/models/ (or $KERAS_HOME/models/), or set loss.vgg_weights to its path. "
        f"To train without the perceptual loss set loss.perceptual_weight=0.")
