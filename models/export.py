"""Export signatures: the SavedModel contract shared by the Trainer, the Evaluator and serving.

`serving_default` (what TF Serving clients call)
    inputs:  image_bytes  string [N]   encoded PNG/JPEG of any size (REST: {"b64": ...}; the `_bytes`
                                       suffix is TF Serving's convention for binary strings)
    outputs: image_bytes  string [N]   the restored image as PNG (scale x larger for SR)
             height       int32  [N]
             width        int32  [N]
`restore` (float batches)
    inputs:  images       float32 [N, H, W, 3] in [0, 1]
    outputs: images       float32 [N, H*s, W*s, 3] in [0, 1]

The generator is a Keras model mapping [0, 1] images to [0, 1] images. Inputs of any size (down to 1x1)
are padded (symmetric) to the generator's size multiple and minimum size and the output cropped back:
pad, never crop the input.
The serving path never applies the training degradation: it takes an already degraded image.
"""
from __future__ import annotations

import json

import tensorflow as tf

from contracts import signatures
from models import images


class RestorationModule(tf.Module):
    def __init__(self, generator, scale: int, size_multiple: int, config_json: str = "{}"):
        super().__init__()
        self.generator = generator
        self.scale = int(scale)
        self.size_multiple = int(size_multiple)
        # Kept in the SavedModel so a served model says how it was made.
        self.config_json = tf.Variable(config_json, trainable=False, dtype=tf.string)

    def _restore(self, x):
        h, w = tf.shape(x)[1], tf.shape(x)[2]
        y = tf.cast(self.generator(self._pad(x, h, w), training=False), tf.float32)
        y = y[:, : h * self.scale, : w * self.scale, :]
        return tf.clip_by_value(y, 0.0, 1.0)

    def _pad(self, x, h, w):
        """Pad (never crop) to the generator's size multiple and minimum size: mirror the edge rows and
        columns (symmetric), replicating the last one where the image is smaller than the padding."""
        m = self.size_multiple
        if m == 1:
            return x
        # Reflection pads inside a downsampling generator need every feature map >= 2 pixels.
        min_size = 4 * m

        def indices(n):
            target = tf.maximum(((n + m - 1) // m) * m, min_size)
            i = tf.range(target)
            return tf.clip_by_value(tf.where(i < n, i, 2 * n - 1 - i), 0, n - 1)

        return tf.gather(tf.gather(x, indices(h), axis=1), indices(w), axis=2)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name=signatures.IMAGES)])
    def restore(self, images):
        return {signatures.IMAGES: self._restore(images)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=signatures.BYTES)])
    def serve_bytes(self, image_bytes):
        def one(b):
            x = images.tf_to_float(images.tf_decode_rgb8(b))[None]
            y = images.tf_to_uint8(self._restore(x)[0])
            return tf.io.encode_png(y), tf.shape(y)[0], tf.shape(y)[1]

        # One image at a time: images of different sizes run in parallel loop iterations crash
        # oneDNN's convolutions (SIGSEGV, TF 2.16 CPU); each image still uses every core.
        png, height, width = tf.map_fn(
            one, image_bytes, parallel_iterations=1,
            fn_output_signature=(tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.int32),
                                 tf.TensorSpec([], tf.int32)))
        return {signatures.BYTES: png, signatures.HEIGHT: height, signatures.WIDTH: width}


def export_generator(generator, export_dir: str, config, size_multiple: int = 1) -> str:
    """Write `generator` as a TF Serving-ready SavedModel to `export_dir`."""
    module = RestorationModule(generator, config.scale, size_multiple, config.to_json())
    tf.saved_model.save(
        module, export_dir,
        signatures={signatures.SERVING: module.serve_bytes, signatures.RESTORE: module.restore})
    return export_dir


def load_config_json(saved_model) -> dict:
    """The run configuration stored in an exported model (a loaded SavedModel object)."""
    return json.loads(saved_model.config_json.numpy().decode())
