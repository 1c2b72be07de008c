"""Where the Trainer runs on Kubernetes: the package's platform spec (its second YAML document).

TFX's KubeflowV2DagRunner writes the PipelineSpec only. KFP's own compiler puts each task's Kubernetes
settings (kfp-kubernetes' `KubernetesExecutorConfig`) into a second document keyed by executor label,
which the KFP backend's driver applies to the task's pod:

    platforms:
      kubernetes:
        deploymentSpec:
          executors:
            Trainer_executor:
              nodeSelector: {labels: {cloud.google.com/gke-accelerator: nvidia-l4}}
              tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]

The Trainer's executor gets the GPU node selector (`kubeflow.accelerator_label` =
`kubeflow.trainer_accelerator`, when set) and a toleration of the `nvidia.com/gpu` taint that GPU node
pools carry (GKE adds it by itself; other clusters do not). With `kubeflow.trainer_workers` > 1 the
Trainer's pod only launches the TFJob, so the placement goes to the TFJob's workers instead
(pipeline/multiworker.py) and the package has no platform document.

Built with kfp-kubernetes' proto and kfp's compiler functions. kfp-kubernetes 1.0.0 (the last release
for the kfp 2.5 / protobuf 3.20 that TFX 1.16 pins) has no `Toleration` message yet: the tolerations are
written in the form of its successors' `KubernetesExecutorConfig.tolerations` (key, operator, value,
effect, tolerationSeconds), which the KFP backend (2.1 and later) reads.
"""
from __future__ import annotations

from typing import Any, Dict, List

GPU_TAINT = "nvidia.com/gpu"
KUBERNETES = "kubernetes"


def gpu_tolerations() -> List[Dict[str, Any]]:
    """Tolerate the GPU node pools' taint, whatever its value (GKE: nvidia.com/gpu=present:NoSchedule)."""
    return [{"key": GPU_TAINT, "operator": "Exists", "effect": "NoSchedule"}]


def node_selector(kcfg) -> Dict[str, str]:
    return {kcfg.accelerator_label: kcfg.trainer_accelerator} if kcfg.trainer_accelerator else {}


def trainer_executor_config(kcfg) -> Dict[str, Any]:
    """The Trainer's KubernetesExecutorConfig (JSON form): GPU node selector and toleration; {} when
    the Trainer asks for no GPU."""
    from google.protobuf import json_format
    from kfp.kubernetes import kubernetes_executor_config_pb2 as k8s

    if not kcfg.trainer_gpus:
        return {}
    config = k8s.KubernetesExecutorConfig()
    config.node_selector.labels.update(node_selector(kcfg))
    out = json_format.MessageToDict(config)
    out["tolerations"] = gpu_tolerations()
    return out


def platform_spec(spec: Dict[str, Any], kcfg, trainer_id: str = "Trainer"):
    """The PlatformSpec of a compiled PipelineSpec (dict): the Trainer task's executor placed on GPU
    nodes. Empty when there is nothing to place (no GPUs, or the TFJob route)."""
    from kfp.compiler import pipeline_spec_builder
    from kfp.pipeline_spec import pipeline_spec_pb2

    out = pipeline_spec_pb2.PlatformSpec()
    config = trainer_executor_config(kcfg) if kcfg.trainer_workers == 1 else {}
    if config:
        label = spec["components"][spec["root"]["dag"]["tasks"][trainer_id]["componentRef"]["name"]]["executorLabel"]
        pipeline_spec_builder.merge_platform_specs(
            out, pipeline_spec_builder.platform_config_to_platform_spec({KUBERNETES: config}, label))
    return out


def append_platform_spec(path: str, platform) -> None:
    """Append the PlatformSpec to the YAML package as its second document (kfp's compiler layout)."""
    import yaml
    from google.protobuf import json_format

    if not platform.platforms:
        return
    with open(path, "a") as f:
        yaml.dump_all([json_format.MessageToDict(platform)], f, sort_keys=True, explicit_start=True)


def load_platform_spec(path: str):
    """The package's PlatformSpec as kfp's client reads it (every document after the first)."""
    from kfp.client import client as kfp_client

    return kfp_client._extract_pipeline_yaml(path).platform_spec
