"""The Kubeflow runner: the pipeline as a Kubeflow Pipelines v2 package (YAML, for open-source KFP).

The SAME `create_pipeline(cfg)` the local runner uses is compiled with TFX's `KubeflowV2DagRunner`,
from a *cluster* copy of the config (`cluster_config`): pipeline root, data root and serving base on
object storage, the cluster's Beam arguments, and `train.num_gpus` = the Trainer's GPU count (so the
Trainer's run_fn uses MirroredStrategy when it is more than one). Then:
- every component gets CPU/memory (`kubeflow.component_*`; the Trainer `kubeflow.trainer_*` and
  `kubeflow.trainer_gpus` x nvidia.com/gpu) as a `ResourceSpec` platform config;
- the Evaluator's baseline (and, with `train.warm_start`, the Trainer's starting point) is the model
  currently in the serving directory, because open-source KFP cannot run TFX Resolver nodes;
- a DataFingerprint task, never cached, feeds ImageExampleGen's cache key (open-source KFP runs no
  ExampleGen driver): unchanged data reuses every step from KFP's cache, new data runs them all;
- every task runs `python -m pipeline.kfp_entrypoint` (TFX's entrypoint after repairing what open-source
  KFP hands over) in `cfg.kubeflow.image` (built from docker/Dockerfile);
- the Trainer's GPU node selector and toleration: the package's second YAML document, the Kubernetes
  platform spec (pipeline/kubernetes_placement.py);
- `kubeflow.trainer_workers` > 1: the Trainer launches a multi-worker TFJob (pipeline/multiworker.py).
docs/kubeflow.md says why.
"""
from __future__ import annotations

import logging
import os
import posixpath
from typing import Any, Dict

from config import REPO_ROOT, Config

log = logging.getLogger(__name__)

# URI schemes the cluster's pods share (and TensorFlow's file system can read).
OBJECT_STORES = ("gs://", "s3://")
GPU_RESOURCE = "nvidia.com/gpu"
# Where docker/Dockerfile puts this package (its WORKDIR).
IMAGE_ROOT = "/pipeline"
ENTRYPOINT = ["python", "-m", "pipeline.kfp_entrypoint"]


# -- the cluster's configuration -------------------------------------------------------------------

def cluster_config(cfg: Config, local_storage: bool = False) -> Config:
    """`cfg` as the cluster runs it: object-storage locations, cluster Beam args, the Trainer's GPUs.

    pipeline root: `<kubeflow.pipeline_root>/<pipeline name>`; data: `kubeflow.data_root` (default
    `<kubeflow.pipeline_root>/data`); pushed models: `<kubeflow.serving_base>/<model name>` (default
    base `<kubeflow.pipeline_root>/serving`). A non-object-storage location is a ValueError, unless
    `local_storage` (a rehearsal of the package on one machine, tests/kfp_launcher.py).
    """
    k = cfg.kubeflow
    data_root = k.data_root or posixpath.join(k.pipeline_root, "data")
    serving_base = k.serving_base or posixpath.join(k.pipeline_root, "serving")
    if not local_storage:
        _require_object_storage("kubeflow.pipeline_root", k.pipeline_root)
        _require_object_storage("kubeflow.data_root", data_root)
        _require_object_storage("kubeflow.serving_base", serving_base)
    if k.trainer_gpus < 0:
        raise ValueError(f"kubeflow.trainer_gpus must be >= 0, got {k.trainer_gpus}")
    if not k.image:
        raise ValueError("kubeflow.image is empty: set the pipeline image (see docs/kubeflow.md)")
    return cfg.override({
        "run_root": k.pipeline_root.rstrip("/"),
        "data.root": data_root,
        "serving.serving_base": serving_base,
        "beam_args": tuple(k.beam_args),
        # The Trainer sees exactly the GPUs its pod requests; > 1 -> MirroredStrategy (models/gan_loop.py).
        "train.num_gpus": k.trainer_gpus,
    })


def _require_object_storage(key: str, uri: str) -> None:
    if not uri.startswith(OBJECT_STORES):
        raise ValueError(f"{key} must be object storage ({' or '.join(OBJECT_STORES)}) that every pod "
                         f"can reach, got {uri!r}")


def package_path(cfg: Config, output: str | None = None) -> str:
    path = output or cfg.kubeflow.output_file or f"{cfg.pipeline_name}.yaml"
    if not path.endswith((".yaml", ".yml")):
        raise ValueError(f"the package for open-source KFP is YAML (.yaml/.yml), got {path!r}")
    return os.path.abspath(path)


# -- platform configuration ------------------------------------------------------------------------

def memory_gb(memory: str) -> float:
    """Kubernetes quantity ("32G", "8Gi", "512M") -> GB, the unit of the pipeline spec's memory_limit.

    kfp's own parser (the one behind `PipelineTask.set_memory_limit`), so units mean what KFP means."""
    from kfp.dsl.pipeline_task import PipelineTask

    return PipelineTask._validate_memory_request_limit(None, str(memory))


def resource_spec(cpu: float, memory: str, gpus: int = 0):
    """The ResourceSpec platform config KubeflowV2DagRunner copies into a task's container."""
    from kfp.pipeline_spec import pipeline_spec_pb2

    container = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec
    spec = container.ResourceSpec(cpu_limit=float(cpu), memory_limit=memory_gb(memory))
    if gpus:
        spec.accelerator.CopyFrom(container.ResourceSpec.AcceleratorConfig(type=GPU_RESOURCE, count=gpus))
    return spec


def attach_resources(components, kcfg) -> Dict[str, Any]:
    """Trainer: trainer_cpu/memory + trainer_gpus GPUs; every other component: component_cpu/memory.

    Returns {component id: ResourceSpec}. Nodes that run no container (Resolver, Importer) get none."""
    from tfx.components import Trainer
    from tfx.dsl.components.base import base_component

    specs = {}
    for c in components:
        if not isinstance(c, base_component.BaseComponent):
            continue
        if isinstance(c, Trainer) and kcfg.trainer_workers == 1:  # else its pod only waits for the TFJob
            spec = resource_spec(kcfg.trainer_cpu, kcfg.trainer_memory, kcfg.trainer_gpus)
        else:
            spec = resource_spec(kcfg.component_cpu, kcfg.component_memory)
        c.with_platform_config(spec)
        specs[c.id] = spec
    if not any(isinstance(c, Trainer) for c in components):
        raise ValueError("the pipeline has no Trainer to give the GPUs to")
    return specs


# -- compile ---------------------------------------------------------------------------------------

def build_cluster_pipeline(cfg: Config, local_storage: bool = False):
    """The TFX pipeline for the cluster (cluster config, serving-dir baseline, resources attached)."""
    from tfx.dsl.components.common import resolver

    from pipeline import multiworker
    from pipeline import pipeline as pipeline_def

    ccfg = cluster_config(cfg, local_storage)
    if not ccfg.kubeflow.baseline_from_serving_dir:
        raise ValueError("kubeflow.baseline_from_serving_dir=false leaves no baseline route on open-source KFP "
                         "(it cannot run Resolver nodes)")
    tfx_pipeline = pipeline_def.create_pipeline(ccfg, target="kubeflow")
    resolvers = [c.id for c in tfx_pipeline.components if isinstance(c, resolver.Resolver)]
    if resolvers:  # open-source KFP would fail the run at that task
        raise ValueError(f"Resolver nodes cannot run on open-source KFP: {resolvers}")
    relocate_repo_paths(tfx_pipeline.components)
    multiworker.use_tfjob_trainer(tfx_pipeline.components, ccfg)
    attach_resources(tfx_pipeline.components, ccfg.kubeflow)
    return ccfg, tfx_pipeline


def relocate_repo_paths(components) -> None:
    """Exec properties that point into this checkout (e.g. ImportSchemaGen's checked-in schema file)
    -> the same file in the image, where docker/Dockerfile puts the package under IMAGE_ROOT."""
    prefix = REPO_ROOT.rstrip("/") + "/"
    for c in components:
        for key, value in c.exec_properties.items():
            if isinstance(value, str) and value.startswith(prefix):
                c.exec_properties[key] = posixpath.join(IMAGE_ROOT, value[len(prefix):])


def compile_pipeline(cfg: Config, output: str | None = None, local_storage: bool = False) -> str:
    """Compile `create_pipeline(cfg)` for Kubeflow Pipelines v2; returns the package (.yaml) path.
    `local_storage`: allow local paths for the cluster's locations (a rehearsal on one machine)."""
    from tfx import version
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner as v2

    from pipeline import kubernetes_placement
    from pipeline.pipeline import DATA_FINGERPRINT_ID

    path = package_path(cfg, output)
    ccfg, tfx_pipeline = build_cluster_pipeline(cfg, local_storage)
    runner = v2.KubeflowV2DagRunner(
        config=v2.KubeflowV2DagRunnerConfig(default_image=cfg.kubeflow.image, default_commands=ENTRYPOINT,
                                            use_pipeline_spec_2_1=True),
        output_dir=os.path.dirname(path), output_filename=os.path.basename(path))
    job = runner.run(tfx_pipeline, write_out=False)
    spec = job["pipelineSpec"]
    _complete_resources(spec, {c.id: c.platform_config for c in tfx_pipeline.components
                               if getattr(c, "platform_config", None) is not None})
    _wire_output_parameters(spec)
    _never_cache(spec, DATA_FINGERPRINT_ID)
    # The YAML form keeps only the PipelineSpec (not the runtime config that holds the root): make
    # the object-storage root the package's default, so a run started from the UI lands there too.
    spec["defaultPipelineRoot"] = ccfg.pipeline_root
    os.makedirs(os.path.dirname(path), exist_ok=True)
    v2._write_pipeline_spec_to_file(  # TFX's own YAML writer (header comments + sorted spec)
        job, f"GAN image restoration ({ccfg.task}, preset {ccfg.name}) from tfx-{version.__version__}; "
             f"pipeline root {ccfg.pipeline_root}", path)
    kubernetes_placement.append_platform_spec(path, kubernetes_placement.platform_spec(spec, ccfg.kubeflow))
    log.info("compiled %s (image %s, trainer GPUs %d)", path, cfg.kubeflow.image, cfg.kubeflow.trainer_gpus)
    return path


def _wire_output_parameters(spec: Dict[str, Any]) -> None:
    """TFX 1.16 names the producer of a parameter taken from another task's output `<id>_task`, but the
    task is keyed `<id>` (KFP's driver: "cannot find producer task"); name it as the task is keyed."""
    tasks = spec["root"]["dag"]["tasks"]
    for task in tasks.values():
        for param in task.get("inputs", {}).get("parameters", {}).values():
            source = param.get("taskOutputParameter")
            if source and source["producerTask"] not in tasks and source["producerTask"].endswith("_task"):
                source["producerTask"] = source["producerTask"][:-len("_task")]


def _never_cache(spec: Dict[str, Any], task_name: str) -> None:
    """KFP caches every task of a TFX package compiled with caching on; this one must run every time."""
    spec["root"]["dag"]["tasks"][task_name]["cachingOptions"] = {}


def _complete_resources(spec: Dict[str, Any], platform_configs: Dict[str, Any]) -> None:
    """Copy each component's ResourceSpec into its executor where TFX's step builder left it out
    (TFX 1.16 drops it for FileBasedExampleGen executors, which ImageExampleGen is)."""
    from google.protobuf import json_format

    executors = spec["deploymentSpec"]["executors"]
    for task_name, task in spec["root"]["dag"]["tasks"].items():
        config = platform_configs.get(task_name)
        label = spec["components"][task["componentRef"]["name"]].get("executorLabel")
        container = executors.get(label, {}).get("container")
        if config is not None and container is not None and "resources" not in container:
            container["resources"] = json_format.MessageToDict(config)


# -- reading a package back ------------------------------------------------------------------------

def load_package(path: str):
    """The package parsed by kfp's own loader (what `Client.create_run_from_pipeline_package` and
    `create_recurring_run` use): a strict PipelineSpec proto parse. Returns the PipelineSpec."""
    from kfp.client import client as kfp_client

    return kfp_client._extract_pipeline_yaml(path).pipeline_spec


def task_containers(spec) -> Dict[str, Any]:
    """{task name: PipelineContainerSpec} of a loaded PipelineSpec (Resolver/Importer tasks omitted)."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    deployment = json_format.ParseDict(json_format.MessageToDict(spec.deployment_spec),
                                       pipeline_spec_pb2.PipelineDeploymentConfig())
    out = {}
    for name, task in spec.root.dag.tasks.items():
        executor = deployment.executors[spec.components[task.component_ref.name].executor_label]
        if executor.HasField("container"):
            out[name] = executor.container
    return out


def task_parameters(spec, task_name: str) -> Dict[str, Any]:
    """A task's constant input parameters (exec properties), as plain Python values."""
    from google.protobuf import json_format

    params = spec.root.dag.tasks[task_name].inputs.parameters
    return {k: json_format.MessageToDict(v.runtime_value.constant) for k, v in params.items()}
