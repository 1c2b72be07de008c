"""Multi-worker training: the cluster TF_CONFIG names, and what each worker writes.

A Training Operator TFJob (docs/kubeflow.md) or any launcher sets `TF_CONFIG` in every worker:
    {"cluster": {"worker": ["host0:port", "host1:port"]}, "task": {"type": "worker", "index": 1}}
With more than one chief/worker task, `make_strategy` (models/gan_loop.py) trains under
`MultiWorkerMirroredStrategy`: every worker runs the same steps on its slice of each global batch and
the gradients are summed across workers, so N workers compute the single-process step.

TensorFlow's multi-worker rules for files (the Keras/CTL multi-worker tutorials): *every* worker saves
(saving reads distributed variables together), the chief (task "chief", else worker 0) into the real
directory, the others into `<dir>/workertemp_<task id>`, which they delete right after; every worker
restores from the chief's directory.
"""
from __future__ import annotations

import json
import logging
import os

import tensorflow as tf

log = logging.getLogger(__name__)

TRAINING_TASKS = ("chief", "worker")


def cluster_resolver():
    """A TFConfigClusterResolver when TF_CONFIG names more than one chief/worker task, else None.

    Parameter servers are refused: the GAN loop is synchronous (MultiWorkerMirroredStrategy)."""
    raw = os.environ.get("TF_CONFIG", "")
    if not raw.strip():
        return None
    try:
        tf_config = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"TF_CONFIG is not JSON: {e}") from None
    cluster = tf_config.get("cluster") or {}
    if "ps" in cluster:
        raise ValueError("TF_CONFIG names parameter servers ('ps'); the Trainer trains synchronously on "
                         "chief/worker tasks only (MultiWorkerMirroredStrategy)")
    if sum(len(cluster.get(t, ())) for t in TRAINING_TASKS) < 2:
        return None
    task = tf_config.get("task") or {}
    if task.get("type") not in TRAINING_TASKS:
        raise ValueError(f"TF_CONFIG task {task!r} is not one of the cluster's chief/worker tasks")
    return tf.distribute.cluster_resolver.TFConfigClusterResolver()


def is_multi_worker(strategy) -> bool:
    return bool(getattr(strategy.extended, "_in_multi_worker_mode", lambda: False)())


def is_chief(strategy) -> bool:
    """The worker whose files count: the only one outside multi-worker training."""
    return not is_multi_worker(strategy) or strategy.extended.should_checkpoint


def write_dir(directory: str, strategy) -> str:
    """Where this worker writes what belongs in `directory`: the directory itself on the chief,
    `<directory>/workertemp_<task id>` on the others (created)."""
    if is_chief(strategy):
        return directory
    temp = os.path.join(directory, f"workertemp_{strategy.cluster_resolver.task_id}")
    tf.io.gfile.makedirs(temp)
    return temp


def remove_worker_copy(directory: str, strategy) -> None:
    if not is_chief(strategy):
        tf.io.gfile.rmtree(write_dir(directory, strategy))


class WorkerCheckpoints:
    """tf.train.CheckpointManager's `latest_checkpoint` / `save` under the multi-worker rules:
    restore from the chief's directory, save everywhere, keep only the chief's copy."""

    def __init__(self, checkpoint: tf.train.Checkpoint, directory: str, strategy, max_to_keep: int):
        self.directory, self.strategy = directory, strategy
        self._manager = tf.train.CheckpointManager(checkpoint, write_dir(directory, strategy), max_to_keep=max_to_keep)

    @property
    def latest_checkpoint(self) -> str | None:
        return tf.train.latest_checkpoint(self.directory)

    def save(self, checkpoint_number: int) -> str:
        path = self._manager.save(checkpoint_number=checkpoint_number)
        if is_chief(self.strategy):
            return path
        remove_worker_copy(self.directory, self.strategy)
        chiefs = os.path.join(self.directory, os.path.basename(path))
        return f"{chiefs} (saved by the chief; this worker's copy removed)"


def checkpoint_manager(checkpoint: tf.train.Checkpoint, directory: str, strategy, max_to_keep: int):
    if not is_multi_worker(strategy):
        return tf.train.CheckpointManager(checkpoint, directory, max_to_keep=max_to_keep)
    return WorkerCheckpoints(checkpoint, directory, strategy, max_to_keep)


def distribute(strategy, dataset: tf.data.Dataset):
    """`strategy.experimental_distribute_dataset`; across workers sharded by DATA: every worker reads
    the same seeded stream and keeps its slice of each global batch, so N workers train on exactly the
    batches one process would (file sharding would change them with the number of workers and fails
    when there are fewer files than workers). The price: each worker decodes the whole stream."""
    if is_multi_worker(strategy):
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        dataset = dataset.with_options(options)
    return strategy.experimental_distribute_dataset(dataset)


def barrier(strategy) -> None:
    """Returns on every worker once all have reached it (a cross-worker all-reduce); nothing outside
    multi-worker training. After the export: no worker reports success before the chief's model exists
    (TFX's Trainer executor checks the model directory on every worker)."""
    if is_multi_worker(strategy):
        one = tf.function(lambda: strategy.run(lambda: tf.constant(1.0)))()
        strategy.reduce(tf.distribute.ReduceOp.SUM, one, axis=None)
