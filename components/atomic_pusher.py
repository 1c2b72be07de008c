"""A Pusher whose new model versions appear whole: copy beside the target, then rename.

The stock TFX 1.16 Pusher (tfx/components/pusher/executor.py) copies the SavedModel file by file
straight into `<base>/<version>/`, `saved_model.pb` last. A TF Serving instance polling the base path
can list that directory while `variables/` is still being written; a crash mid-copy leaves a broken
highest version behind, which TF Serving keeps trying to load. This executor copies into
`<base>/.tmp-<version>-<random>/` (TF Serving ignores non-numeric names) and renames it to
`<base>/<version>/` when complete: one rename on a local or POSIX filesystem, so the version is
either absent or whole. (On object stores such as GCS a "rename" is copy+delete per object; there
`saved_model.pb` still lands last, which is the most those stores allow.)

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
import time
import uuid
from typing import Any, Dict, List

from tfx import types
from tfx.components import Pusher
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

log = logging.getLogger(__name__)
TMP_PREFIX = ".tmp-"
_RENAME_ATTEMPTS = 5
# Which model a version was pushed from (assets.extra/ is where TF Serving expects, and ignores, extras).
SOURCE_FILE = os.path.join("assets.extra", "pushed_from.txt")


def _versions(base_dir: str) -> list:
    """The numeric version names under `base_dir` (temporary push dirs and other entries ignored)."""
    names = (n.rstrip("/") for n in (fileio.listdir(base_dir) if fileio.isdir(base_dir) else []))
    return [int(n) for n in names if n.isdigit()]


def newest_version_source(base_dir: str) -> tuple:
    """(version dir, the model path it was pushed from or "") of the newest version under `base_dir`."""
    versions = _versions(base_dir)
    if not versions:
        return "", ""
    newest = os.path.join(base_dir, str(max(versions)))
    marker = os.path.join(newest, SOURCE_FILE)
    return newest, (io_utils.read_string_file(marker).strip() if fileio.exists(marker) else "")


def next_version(base_dir: str) -> int:
    """A UNIX-timestamp version strictly newer than every numeric version already in `base_dir`."""
    return max([int(time.time())] + [v + 1 for v in _versions(base_dir)])


def publish_atomically(model_path: str, base_dir: str) -> str:
    """Copy the SavedModel at `model_path` to `<base_dir>/<new version>/` so that the version dir only
    ever exists complete. Returns the version dir. A failed copy leaves no version behind."""
    fileio.makedirs(base_dir)
    version = next_version(base_dir)
    tmp = os.path.join(base_dir, f"{TMP_PREFIX}{version}-{uuid.uuid4().hex[:8]}")
    try:
        # saved_model.pb last, as the stock Pusher does, for stores where rename is not atomic.
        io_utils.copy_dir(model_path, tmp, deny_regex_patterns=[r"saved_model\.pb"])
        io_utils.write_string_file(os.path.join(tmp, SOURCE_FILE), model_path)
        io_utils.copy_file(os.path.join(model_path, "saved_model.pb"), os.path.join(tmp, "saved_model.pb"))
        for _ in range(_RENAME_ATTEMPTS):
            final = os.path.join(base_dir, str(version))
            if not fileio.exists(final):
                try:
                    fileio.rename(tmp, final)
                    return final
                except Exception:  # another pusher took this version in between: take the next one
                    if not fileio.exists(final):
                        raise
            version = max(version + 1, next_version(base_dir))
        raise RuntimeError(f"could not claim a new version under {base_dir} after {_RENAME_ATTEMPTS} attempts")
    except BaseException:
        if fileio.exists(tmp):
            fileio.rmtree(tmp)
        raise


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
        newest, source = newest_version_source(base)
        if source == model_path:
            # A rerun with a cached Trainer re-blesses the same model: serving it again under a new
            # version would only make TF Serving reload identical weights.
            serving_path = newest
            log.info("model %s is already the newest version %s; not pushed again", model_path, serving_path)
        else:
            serving_path = publish_atomically(model_path, base)
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
