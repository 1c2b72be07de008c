"""TensorBoard for a training run: loss and learning-rate scalars, PSNR on a fixed eval batch, and
image grids (SR: LR | bicubic | output | HR; deblur: blurred | output | sharp)."""
from __future__ import annotations

import tensorflow as tf

GRID_IMAGES = 4  # rows of the image grid (and size of the fixed validation batch)


class Summaries:
    def __init__(self, logdir: str | None, cfg, generator, val_degraded, val_target):
        """`logdir` None: nothing is written (a multi-worker run's non-chief workers)."""
        self.cfg = cfg
        self.writer = tf.summary.create_file_writer(logdir) if logdir else tf.summary.create_noop_writer()
        self.val_degraded, self.val_target = val_degraded, val_target
        self._predict = tf.function(lambda x: tf.clip_by_value(
            tf.cast(generator(x, training=False), tf.float32), 0.0, 1.0))

    def scalars(self, step: int, values: dict) -> None:
        with self.writer.as_default(step=step):
            for name, value in values.items():
                tf.summary.scalar(name if "/" in name else f"loss/{name}", value)

    def validation(self, step: int, with_images: bool) -> float:
        """PSNR (Y channel, published protocol) of the generator on the fixed eval batch; optionally
        the image grid. Returns the PSNR."""
        from models import metrics

        output = self._predict(self.val_degraded)
        border = self.cfg.scale if self.cfg.task == "sr" else 0  # the published protocol
        psnr = float(tf.reduce_mean(metrics.tf_psnr(output, self.val_target, border)))
        with self.writer.as_default(step=step):
            tf.summary.scalar("eval/psnr_y", psnr)
            if with_images:
                tf.summary.image("eval/" + ("lr|bicubic|output|hr" if self.cfg.task == "sr" else "blur|output|sharp"),
                                 self.grid(output), max_outputs=GRID_IMAGES)
        self.writer.flush()
        return psnr

    def grid(self, output):
        """Side-by-side panels at the output size, one row per validation image."""
        size = tf.shape(self.val_target)[1:3]
        panels = []
        if self.cfg.task == "sr":
            panels.append(tf.image.resize(self.val_degraded, size, method="nearest"))
            panels.append(tf.clip_by_value(tf.image.resize(self.val_degraded, size, method="bicubic",
                                                           antialias=True), 0.0, 1.0))
        else:
            panels.append(self.val_degraded)
        panels += [output, self.val_target]
        return tf.concat(panels, axis=2)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()
