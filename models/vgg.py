"""VGG feature extractors for the perceptual loss.

Nothing downloads: the VGG is built with `weights=None` and the Keras ImageNet weights are loaded from
the local file `config.vgg_weights.resolve_weights` finds (a missing file is an error that names the
file and where to put it); random weights only with the test switch `loss.allow_random_vgg`.
"""
from __future__ import annotations

import logging

import tensorflow as tf
import tf_keras as keras

from config.vgg_weights import check_net, resolve_weights

log = logging.getLogger(__name__)

_BUILDERS = {"vgg16": keras.applications.VGG16, "vgg19": keras.applications.VGG19}
# Caffe-style preprocessing the ImageNet VGG weights expect: BGR, 0..255, ImageNet mean removed.
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)


def build_vgg(net: str) -> keras.Model:
    """The convolutional part of VGG16/19 (no top), any input size, random weights (never fetched)."""
    check_net(net)
    return _BUILDERS[net](include_top=False, weights=None, input_shape=(None, None, 3))


def load_vgg(net: str, weights_path: str) -> keras.Model:
    """VGG with the weights of a Keras notop file, loaded layer by layer in order: a file of another
    architecture fails instead of half-loading (no by_name matching that could skip layers)."""
    vgg = build_vgg(net)
    try:
        vgg.load_weights(weights_path)
    except (ValueError, OSError) as e:
        raise ValueError(f"{weights_path} is not a Keras {net.upper()} notop weights file: {e}") from e
    return vgg


def preprocess(images):
    """[0, 1] RGB -> the ImageNet VGG input (BGR, 0..255, mean removed); keras `preprocess_input`
    'caffe' mode, written out so it works on any float dtype inside a graph."""
    x = tf.reverse(tf.cast(images, tf.float32) * 255.0, axis=[-1])
    return x - tf.constant(IMAGENET_BGR_MEAN, tf.float32)


def feature_extractor(net: str, layer: str, weights: str = "", allow_random: bool = False) -> keras.Model:
    """A frozen model from preprocessed images (see `preprocess`) to the output of `layer` (after its
    ReLU, as in the SRGAN and DeblurGAN papers). `weights` as in `resolve_weights`."""
    if allow_random:
        log.warning("#" * 78 + "\n# loss.allow_random_vgg is set: the perceptual loss uses RANDOM VGG weights.\n"
                    "# This is a test switch; such a loss is not a perceptual loss.\n" + "#" * 78)
        vgg = build_vgg(net)
    else:
        vgg = load_vgg(net, resolve_weights(net, weights))
    names = [ly.name for ly in vgg.layers]
    if layer not in names:
        raise ValueError(f"{net} has no layer {layer!r}; conv layers: {[n for n in names if 'conv' in n]}")
    features = keras.Model(vgg.input, vgg.get_layer(layer).output, name=f"{net}_{layer}")
    features.trainable = False
    return features
