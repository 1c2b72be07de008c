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

What the signatures run is the generator's inference graph (models/inference: batch norm folded, exact
rewrites, weights as constants, in `export.precision`), not the Keras model; the Keras generator is
still tracked as the attribute `generator` (its variables in the checkpoint under that path, so
`tf.train.Checkpoint(generator=model).read(<version>/variables/variables)` warm-starts training), as is
the run configuration (`config_json`). Inputs of any size (down to 1x1) are padded (symmetric) to the
generator's size multiple and minimum size and the output cropped back: pad, never crop the input.
Inputs with a side above `export.tile_size` are restored in overlapping tiles inside the graph
(models/inference/tiles.py), so memory is bounded by the tile. `serving_default` restores the images
of one request that share a size in one batched call. Every export carries TF Serving's warm-up file
(models/warmup_requests.py). The serving path never applies the training degradation.
"""
from __future__ import annotations

import json

import tensorflow as tf

from contracts import signatures
from models import images, inference
from models.inference import precision as precisions
from models.inference import tiles
from models.inference.tiles import sequential_loop
from models.warmup_requests import write_warmup_file


class RestorationModule(tf.Module):
    def __init__(self, generator, scale: int, size_multiple: int, config_json: str = "{}", forward=None,
                 tile_size: int = 0, tile_overlap: int = 0):
        """`forward`: float32 [N, H, W, 3] -> [N, sH, sW, 3] for H, W multiples of size_multiple (default:
        the Keras generator); tile_size 0 restores whole images."""
        super().__init__()
        self.generator = generator
        self.scale = int(scale)
        self.size_multiple = int(size_multiple)
        self.tile_size, self.tile_overlap = int(tile_size), int(tile_overlap)
        # Kept in the SavedModel so a served model says how it was made.
        self.config_json = tf.Variable(config_json, trainable=False, dtype=tf.string)
        # One function for the whole-image and the tile paths: its constants are stored once.
        self._forward = tf.function(forward or (lambda x: generator(x, training=False)),
                                    input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])

    def _whole(self, x):
        h, w = tf.shape(x)[1], tf.shape(x)[2]
        return self._forward(self._pad(x, h, w))[:, : h * self.scale, : w * self.scale, :]

    def _restore(self, x, finish, out_dtype):
        """float32 [N, H, W, 3] -> finish(restored) [N, sH, sW, 3] of out_dtype, tiled above tile_size."""
        if not self.tile_size:
            return finish(self._whole(x))
        small = (tf.shape(x)[1] <= self.tile_size) & (tf.shape(x)[2] <= self.tile_size)
        return tf.cond(small, lambda: finish(self._whole(x)),
                       lambda: tiles.restore_tiled(x, self._whole, self.scale, self.tile_size, self.tile_overlap,
                                                   finish, out_dtype))

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
        clip = lambda y: tf.clip_by_value(y, 0.0, 1.0)  # noqa: E731
        return {signatures.IMAGES: self._restore(images, clip, tf.float32)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=signatures.BYTES)])
    def serve_bytes(self, image_bytes):
        n = tf.size(image_bytes)
        decoded = tf.TensorArray(tf.uint8, size=n, infer_shape=False, element_shape=tf.TensorShape([None, None, 3]))
        decoded, sizes = sequential_loop(n, lambda i, ta, hw: _decode_into(image_bytes[i], i, ta, hw),
                                         decoded, tf.TensorArray(tf.int32, size=n, element_shape=[2]))
        hw = tf.reshape(sizes.stack(), [-1, 2])
        # Images of one size form one batch for the generator; groups run one after the other (images of
        # different sizes in parallel loop iterations crash oneDNN's convolutions, TF 2.16 CPU).
        groups, group_of = tf.unique(tf.cast(hw[:, 0], tf.int64) * (1 << 32) + tf.cast(hw[:, 1], tf.int64))

        def restore_group(g, pngs):
            members = tf.cast(tf.reshape(tf.where(tf.equal(group_of, g)), [-1]), tf.int32)
            restored = self._restore(images.tf_to_float(decoded.gather(members)), images.tf_to_uint8, tf.uint8)
            # A loop over slices, not map_fn, which would first copy the whole batch into a list.
            encode = lambda j, pngs: (pngs.write(members[j], tf.io.encode_png(restored[j])),)  # noqa: E731
            return sequential_loop(tf.size(members), encode, pngs)

        (pngs,) = sequential_loop(tf.size(groups, out_type=tf.int32), restore_group,
                                  tf.TensorArray(tf.string, size=n, element_shape=[]))
        out_hw = hw * self.scale
        return {signatures.BYTES: tf.reshape(pngs.stack(), [-1]), signatures.HEIGHT: out_hw[:, 0],
                signatures.WIDTH: out_hw[:, 1]}


def _decode_into(data, i, decoded, sizes):
    img = images.tf_decode_rgb8(data)
    return decoded.write(i, img), sizes.write(i, tf.shape(img)[:2])


def export_generator(generator, export_dir: str, config, size_multiple: int = 1) -> str:
    """Write `generator` as a TF Serving-ready SavedModel to `export_dir`: its inference graph in
    `config.export.precision`, which this machine must be able to run at speed (ConfigError otherwise),
    tiled above `config.export.tile_size`, with the warm-up requests."""
    precisions.check_supported(config.export.precision)
    return write_savedmodel(generator, export_dir, config, size_multiple)


def write_savedmodel(generator, export_dir: str, config, size_multiple: int = 1) -> str:
    """export_generator without the check of this machine's precision support: for a model exported on
    one kind of machine and served on another (and tests of reduced precision on any CPU)."""
    e = config.export
    inference.check_rewrite(generator, config, size=6 * max(size_multiple, 4))
    module = RestorationModule(generator, config.scale, size_multiple, config.to_json(),
                               inference.inference_fn(generator, config, e.precision), e.tile_size, e.tile_overlap)
    tf.saved_model.save(
        module, export_dir,
        signatures={signatures.SERVING: module.serve_bytes, signatures.RESTORE: module.restore})
    write_warmup_file(export_dir, config.model_name)
    return export_dir


def load_config_json(saved_model) -> dict:
    """The run configuration stored in an exported model (a loaded SavedModel object)."""
    return json.loads(saved_model.config_json.numpy().decode())
