"""A Pusher whose new model versions appear whole (contracts/serving_layout.py `publish`).

The stock TFX 1.16 Pusher (tfx/components/pusher/executor.py) copies the SavedModel file by file
straight into `<base>/<version>/`, `saved_model.pb` last. A TF Serving instance polling the base path
can list that directory while `variables/` is still being written; a crash mid-copy leaves a broken
highest version behind, which TF Serving keeps trying to load. This executor publishes through a
temporary directory, synced to disk, and one rename.

Everything else is the stock Pusher: blessing check (`blessed` == 1 on the ModelBlessing), the model
path, UNIX-timestamp versions, the archive copy into the PushedModel artifact and its custom
properties `pushed`, `pushed_destination`, `pushed_version`. A version never goes backwards or
collides: it is max(now, newest existing + 1).

Wiring (see `make_pusher`):
    Pusher(model=..., model_blessing=evaluator.outputs['blessing'],
           push_destination=PushDestination(filesystem=Filesystem(base_directory=cfg.serving_dir)),
           custom_executor_spec=executor_spec.ExecutorClassSpec(AtomicPusherExecutor))
"""
from __future__ import annotations

import logging
import os
from typing import Any, Dict, List

from tfx import types
from tfx.components import Pusher
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from contracts import serving_layout

log = logging.getLogger(__name__)


class AtomicPusherExecutor(pusher_executor.Executor):
    """The stock Pusher executor with an atomic filesystem push (see the module docstring)."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        model_path = self.GetModelPath(input_dict)
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        if destination.WhichOneof("destination") != "filesystem":
            raise NotImplementedError(f"push destination {destination.WhichOneof('destination')!r}: "
                                      f"only filesystem is supported")
        versioning = destination.filesystem.versioning
        if versioning not in (pusher_pb2.Versioning.AUTO, pusher_pb2.Versioning.UNIX_TIMESTAMP):
            raise NotImplementedError(f"versioning {versioning}: only UNIX_TIMESTAMP is supported")
        base = destination.filesystem.base_directory
        newest = serving_layout.latest_version_dir(base)
        if serving_layout.same_weights(model_path, newest):
            # A rerun re-blesses the same weights (a cached Trainer, or a finished training run resumed):
            # serving them again under a new version would only make TF Serving reload them.
            serving_path = newest
            log.info("model %s holds the weights of the newest version %s; not pushed again", model_path, newest)
        else:
            serving_path = serving_layout.publish(model_path, base)
            log.info("model %s pushed to %s", model_path, serving_path)
        version = os.path.basename(serving_path)
        io_utils.copy_dir(model_path, model_push.uri)  # the archive copy, as the stock Pusher keeps
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=version)


def make_pusher(cfg, model: types.BaseChannel, model_blessing: types.BaseChannel) -> Pusher:
    """The stock Pusher component with the atomic executor, pushing to `cfg.serving_dir`."""
    return Pusher(
        model=model, model_blessing=model_blessing,
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=cfg.serving_dir)),
        custom_executor_spec=executor_spec.ExecutorClassSpec(AtomicPusherExecutor))
