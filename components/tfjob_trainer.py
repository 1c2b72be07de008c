"""Multi-worker training on Kubeflow: the Trainer's executor launches a Training Operator TFJob.

The way TFX's Vertex extension launches a custom job (tfx/extensions/google_cloud_ai_platform/trainer):
the Trainer task's pod does not train; its executor forwards the execution's inputs, outputs and exec
properties to `python -m tfx.scripts.run_executor` with TFX's own GenericExecutor, run by every worker
of a TFJob (the Training Operator's `kubeflow.org/v1` TFJob, which sets TF_CONFIG in each pod), and
waits for the job. Every worker runs `models.trainer.run_fn` under MultiWorkerMirroredStrategy
(models/gan_loop.py, models/cluster.py); worker 0 is the chief: its checkpoints and model are the ones
kept, at the artifact URIs of this execution (object storage every pod reaches).

`custom_config["tfjob"]` (set by pipeline/multiworker.py from the `kubeflow` settings) holds the job:
name prefix, namespace (default: this pod's), image, workers, and per worker GPUs, CPU, memory, node
selector and tolerations. The manifest is built with the Training Operator's Python SDK
(`kubeflow-training`) models and submitted with its TrainingClient (in-cluster credentials: the
pipeline's service account needs create/get/delete on tfjobs.kubeflow.org).
"""
from __future__ import annotations

import json
import logging
import os
import uuid
from typing import Any, Dict, List

from tfx.dsl.components.base import base_executor

log = logging.getLogger(__name__)

TFJOB_KEY = "tfjob"
WORKER_EXECUTOR = "tfx.components.trainer.executor.GenericExecutor"
RUN_EXECUTOR = ["python", "-m", "tfx.scripts.run_executor"]
CONTAINER = "tensorflow"  # the Training Operator finds the TF container (and its port) by this name
SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
JOB_TIMEOUT_S = 7 * 24 * 3600


def worker_command(input_dict, output_dict, exec_properties: Dict[str, Any]) -> List[str]:
    """What every TFJob worker runs: this execution, as TFX's GenericExecutor, through run_executor
    (the arguments TFX's training_clients.generate_container_command forms for Vertex)."""
    from tfx.types import artifact_utils

    custom = json.loads(exec_properties.get("custom_config") or "{}")
    custom.pop(TFJOB_KEY, None)  # the workers train; they launch nothing
    properties = {**exec_properties, "custom_config": json.dumps(custom, sort_keys=True)}
    return RUN_EXECUTOR + ["--executor_class_path", WORKER_EXECUTOR,
                           "--inputs", artifact_utils.jsonify_artifact_dict(input_dict),
                           "--outputs", artifact_utils.jsonify_artifact_dict(output_dict),
                           "--exec-properties", json.dumps(properties, sort_keys=True)]


def tfjob_manifest(name: str, namespace: str, command: List[str], job: Dict[str, Any]):
    """The TFJob (kubeflow-training's KubeflowOrgV1TFJob): `job["workers"]` Worker replicas (worker 0
    is the chief) running `command` in `job["image"]`, each with `job["gpus"]` nvidia.com/gpu, CPU and
    memory limits, the GPU node selector and tolerations. Restarted on failure; a restarted cluster
    resumes from the chief's checkpoint."""
    from kubeflow.training import models
    from kubernetes.client import models as k8s

    limits = {"cpu": str(job["cpu"]), "memory": str(job["memory"])}
    if job["gpus"]:
        limits["nvidia.com/gpu"] = str(job["gpus"])
    container = k8s.V1Container(name=CONTAINER, image=job["image"], command=command,
                                resources=k8s.V1ResourceRequirements(limits=limits, requests=dict(limits)))
    pod = k8s.V1PodSpec(containers=[container], node_selector=job.get("node_selector") or None,
                        tolerations=[k8s.V1Toleration(**t) for t in job.get("tolerations", [])] or None)
    worker = models.KubeflowOrgV1ReplicaSpec(replicas=int(job["workers"]), restart_policy="OnFailure",
                                             template=k8s.V1PodTemplateSpec(spec=pod))
    return models.KubeflowOrgV1TFJob(
        api_version="kubeflow.org/v1", kind="TFJob",
        metadata=k8s.V1ObjectMeta(name=name, namespace=namespace, labels={"app": "gan-restoration-trainer"}),
        spec=models.KubeflowOrgV1TFJobSpec(
            tf_replica_specs={"Worker": worker},
            run_policy=models.KubeflowOrgV1RunPolicy(backoff_limit=int(job.get("backoff_limit", 3)),
                                                     clean_pod_policy="Running")))


def manifest_dict(tfjob) -> Dict[str, Any]:
    """The manifest as the SDK sends it to the API server (camelCase JSON)."""
    from kubeflow.training.api_client import ApiClient

    return ApiClient().sanitize_for_serialization(tfjob)


def job_namespace(job: Dict[str, Any]) -> str:
    if job.get("namespace"):
        return job["namespace"]
    try:
        with open(SERVICE_ACCOUNT_NAMESPACE) as f:
            return f.read().strip()
    except OSError:
        raise ValueError("the TFJob needs a namespace: set kubeflow.tfjob_namespace (not running in a pod)") from None


class Executor(base_executor.BaseExecutor):
    """Launches the TFJob for this Trainer execution, waits for it, checks the chief exported a model."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        from kubeflow.training import TrainingClient
        from tfx.dsl.io import fileio
        from tfx.types import artifact_utils, standard_component_specs
        from tfx.utils import path_utils

        self._log_startup(input_dict, output_dict, exec_properties)
        job = json.loads(exec_properties["custom_config"])[TFJOB_KEY]
        namespace = job_namespace(job)
        name = f"{job['name_prefix']}-{uuid.uuid4().hex[:8]}"
        tfjob = tfjob_manifest(name, namespace, worker_command(input_dict, output_dict, exec_properties), job)
        client = TrainingClient()
        log.info("creating TFJob %s/%s: %d workers x %d GPU(s)", namespace, name, job["workers"], job["gpus"])
        client.create_tfjob(tfjob, namespace=namespace)
        client.wait_for_job_conditions(name, namespace, expected_conditions={"Succeeded", "Failed"},
                                       timeout=JOB_TIMEOUT_S, polling_interval=30)
        if not client.is_job_succeeded(name, namespace):
            raise RuntimeError(f"TFJob {namespace}/{name} failed: "
                               f"{client.get_job_conditions(name, namespace)[-1:]}; its pods' logs: "
                               f"kubectl -n {namespace} logs -l training.kubeflow.org/job-name={name}")
        serving_dir = path_utils.serving_model_dir(
            artifact_utils.get_single_uri(output_dict[standard_component_specs.MODEL_KEY]))
        if not fileio.exists(os.path.join(serving_dir, "saved_model.pb")):
            raise RuntimeError(f"TFJob {namespace}/{name} succeeded but left no model in {serving_dir}")
        log.info("TFJob %s/%s succeeded; model in %s", namespace, name, serving_dir)
