"""`kubeflow.trainer_workers` > 1: the cluster pipeline's Trainer launches a multi-worker TFJob.

The Trainer node keeps its inputs, outputs and exec properties (so the package, the cache key and the
Evaluator's inputs look the same); its executor becomes components.tfjob_trainer.Executor and its
custom_config gains the TFJob's description (`tfjob`): image, workers, per-worker GPUs, CPU, memory
and the GPU placement of pipeline/kubernetes_placement.py. Each worker trains with
`train.num_gpus = kubeflow.trainer_gpus` under MultiWorkerMirroredStrategy; the Trainer's own pod only
waits, so it gets the small component resources and no GPU.
"""
from __future__ import annotations

import json
from typing import Any, Dict


def tfjob_settings(ccfg) -> Dict[str, Any]:
    from pipeline import kubernetes_placement

    k = ccfg.kubeflow
    return {"name_prefix": ccfg.pipeline_name[:50].rstrip("-") + "-trainer", "namespace": k.tfjob_namespace,
            "image": k.image, "workers": k.trainer_workers, "gpus": k.trainer_gpus, "cpu": k.trainer_cpu,
            "memory": k.trainer_memory, "node_selector": kubernetes_placement.node_selector(k),
            "tolerations": kubernetes_placement.gpu_tolerations() if k.trainer_gpus else []}


def use_tfjob_trainer(components, ccfg) -> None:
    """With more than one worker, hand the Trainer's training to a TFJob (in place); else nothing."""
    from tfx.components import Trainer
    from tfx.dsl.components.base import executor_spec

    from components.tfjob_trainer import TFJOB_KEY, Executor

    if ccfg.kubeflow.trainer_workers <= 1:
        return
    trainer = next(c for c in components if isinstance(c, Trainer))
    custom = json.loads(trainer.exec_properties["custom_config"])
    custom[TFJOB_KEY] = tfjob_settings(ccfg)
    trainer.exec_properties["custom_config"] = json.dumps(custom, sort_keys=True)
    trainer.executor_spec = executor_spec.ExecutorClassSpec(Executor)
