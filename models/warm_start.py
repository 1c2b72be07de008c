"""Warm start: a training run's generator initialised from a pushed (blessed) SavedModel.

The export keeps the Keras generator in the SavedModel (`RestorationModule.generator`), so its variables
sit in `<model>/variables/variables` under `generator/...` and are read back by the same object path.
A model of another architecture (the configuration stored in it says so) is refused with the reason.
"""
from __future__ import annotations

import logging
import os

import tensorflow as tf

log = logging.getLogger(__name__)


class WarmStartError(ValueError):
    """The base model cannot initialise this run's generator."""


def load_generator(generator, cfg, model_dir: str) -> None:
    """Assign the generator variables of the SavedModel at `model_dir` to `generator` (built for `cfg`)."""
    from models.restorer import stored_config

    try:
        stored = stored_config(model_dir)
    except ValueError as e:
        raise WarmStartError(f"warm start from {model_dir}: not a model of this product ({e})") from None
    if (stored.task, stored.model) != (cfg.task, cfg.model):
        raise WarmStartError(
            f"warm start from {model_dir}: it is a {stored.task} model with model settings {stored.model}, this run "
            f"trains {cfg.task} with {cfg.model}; set train.warm_start=false to start from initial weights")
    status = tf.train.Checkpoint(generator=generator).read(os.path.join(model_dir, "variables", "variables"))
    status.assert_existing_objects_matched()  # every generator variable found in the model
    status.expect_partial()  # the model holds more (its config): not ours to restore
    log.info("warm start: generator initialised from %s", model_dir)
