"""The Trainer on a GPU cluster: the compiled package's Kubernetes platform spec (GPU node selector and
toleration on the Trainer's executor only), read back with kfp's client loader and kfp-kubernetes' proto;
and the multi-worker route (`kubeflow.trainer_workers` > 1): the TFJob the Trainer's executor launches,
built and read back with the Training Operator's SDK, whose worker command trains as two TFJob pods
would (TF_CONFIG set as the operator sets it, two processes on loopback).

No cluster here: nothing is submitted; the TFJob's pods are run as local processes.
"""
import json
import os
import subprocess
import sys

import pytest
from test_trainer_multiworker import tf_configs

from config import preset
from pipeline import kubeflow_runner, kubernetes_placement

IMAGE = "registry.example.com/ml/gan-restoration:test"
ACCELERATOR = "nvidia-l4"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cfg(**overrides):
    return preset("tiny").override({"kubeflow.image": IMAGE, "kubeflow.pipeline_root": "gs://bucket/gan",
                                    "kubeflow.trainer_gpus": 2, "kubeflow.trainer_accelerator": ACCELERATOR,
                                    **overrides})


@pytest.fixture(scope="module")
def gpu_package(tmp_path_factory):
    """`gan-restore compile` for 2 GPUs of one type."""
    from cli import main as cli

    path = str(tmp_path_factory.mktemp("kfp") / "gpu.yaml")
    settings = {"kubeflow.image": IMAGE, "kubeflow.pipeline_root": "gs://bucket/gan", "kubeflow.trainer_gpus": 2,
                "kubeflow.trainer_accelerator": ACCELERATOR}
    sets = [a for k, v in settings.items() for a in ("--set", f"{k}={v}")]
    assert cli.main(["compile", *sets, "--output", path]) == 0
    return path


def _executor_label(spec, task):
    return spec.components[spec.root.dag.tasks[task].component_ref.name].executor_label


def test_platform_spec_places_only_the_trainer_on_gpu_nodes(gpu_package):
    from google.protobuf import json_format
    from kfp.kubernetes import kubernetes_executor_config_pb2 as k8s
    from kubernetes.client import ApiClient, V1Toleration

    spec = kubeflow_runner.load_package(gpu_package)  # the PipelineSpec still loads
    platform = kubernetes_placement.load_platform_spec(gpu_package)  # kfp's client: the second document
    executors = platform.platforms["kubernetes"].deployment_spec.executors
    assert set(executors) == {_executor_label(spec, "Trainer")} == {"Trainer_executor"}
    config = json_format.MessageToDict(executors["Trainer_executor"])
    tolerations = config.pop("tolerations")
    # kfp-kubernetes' own message, strictly (an unknown field fails the parse).
    parsed = json_format.ParseDict(config, k8s.KubernetesExecutorConfig())
    assert dict(parsed.node_selector.labels) == {"cloud.google.com/gke-accelerator": ACCELERATOR}
    # kfp-kubernetes 1.0.0 has no Toleration message; its successors' fields are Kubernetes' own.
    assert tolerations == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    api = ApiClient()
    for t in tolerations:
        as_k8s = api._ApiClient__deserialize(t, V1Toleration)
        assert api.sanitize_for_serialization(as_k8s) == t


def test_no_gpus_no_platform_document(tmp_path):
    path = kubeflow_runner.compile_pipeline(_cfg(**{"kubeflow.trainer_gpus": 0, "kubeflow.trainer_accelerator": ""}),
                                            str(tmp_path / "cpu.yaml"))
    assert not kubernetes_placement.load_platform_spec(path).platforms
    assert "\n---\n" not in open(path).read()


def test_label_key_is_configurable_and_checked():
    from config import ConfigError

    cfg = _cfg(**{"kubeflow.accelerator_label": "node.example.com/gpu-type"})
    assert kubernetes_placement.node_selector(cfg.kubeflow) == {"node.example.com/gpu-type": ACCELERATOR}
    with pytest.raises(ConfigError, match="kubeflow.accelerator_label must be a Kubernetes label key"):
        _cfg(**{"kubeflow.accelerator_label": "gpu type"})
    with pytest.raises(ConfigError, match="asks for none"):
        _cfg(**{"kubeflow.trainer_gpus": 0})


# -- multi-worker: the TFJob route ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def tfjob_package(tmp_path_factory):
    cfg = _cfg(**{"kubeflow.trainer_workers": 2, "kubeflow.tfjob_namespace": "ml-team"})
    return cfg, kubeflow_runner.compile_pipeline(cfg, str(tmp_path_factory.mktemp("kfp") / "tfjob.yaml"))


def test_multi_worker_trainer_launches_a_tfjob(tfjob_package):
    cfg, path = tfjob_package
    spec = kubeflow_runner.load_package(path)
    trainer = kubeflow_runner.task_containers(spec)["Trainer"]
    args = list(trainer.args)
    assert args[args.index("--executor_class_path") + 1] == "components.tfjob_trainer.Executor"
    assert not trainer.resources.accelerator.type  # its pod only waits for the TFJob
    assert trainer.resources.cpu_limit == cfg.kubeflow.component_cpu
    custom = json.loads(kubeflow_runner.task_parameters(spec, "Trainer")["custom_config"])
    job = custom["tfjob"]
    assert (job["workers"], job["gpus"], job["image"], job["namespace"]) == (2, 2, IMAGE, "ml-team")
    assert job["node_selector"] == {"cloud.google.com/gke-accelerator": ACCELERATOR}
    assert json.loads(custom["config"])["train"]["num_gpus"] == 2  # per worker
    assert not kubernetes_placement.load_platform_spec(path).platforms  # placement is the TFJob's


def _trainer_execution(data, cfg, out):
    """A Trainer execution as the KFP launcher hands it to the executor: input and output artifacts and
    exec properties (custom_config with the TFJob description)."""
    from tfx.types import standard_artifacts

    from pipeline import multiworker, pipeline

    def artifact(cls, uri, **props):
        a = cls()
        a.uri = uri
        for k, v in props.items():
            setattr(a, k, v)
        return a

    examples = artifact(standard_artifacts.Examples, os.path.dirname(data.train_split_dir),
                        split_names='["train", "eval"]')
    inputs = {"examples": [examples],
              "transform_graph": [artifact(standard_artifacts.TransformGraph, data.transform_graph)]}
    outputs = {"model": [artifact(standard_artifacts.Model, str(out / "model"))],
               "model_run": [artifact(standard_artifacts.ModelRun, str(out / "model_run"))]}
    custom = {"config": cfg.to_json(), "tfjob": multiworker.tfjob_settings(cfg)}
    properties = {"run_fn": pipeline.RUN_FN, "custom_config": json.dumps(custom),
                  "train_args": json.dumps({"num_steps": pipeline.train_steps(cfg)}),
                  "eval_args": json.dumps({"num_steps": 1})}
    return inputs, outputs, properties


@pytest.mark.slow
def test_tfjob_manifest_validates_and_its_workers_train(transformed_sr, tmp_path):
    from fixtures_data import fixture_config
    from kubeflow.training import models
    from kubeflow.training.api_client import ApiClient
    from tfx.scripts import run_executor

    from components import tfjob_trainer

    cfg = fixture_config("sr", **{"train.warmup_steps": 2, "train.gan_steps": 2,
                                  "train.checkpoint_root": str(tmp_path / "ckpt"),
                                  "kubeflow.trainer_workers": 2, "kubeflow.trainer_gpus": 0})
    inputs, outputs, properties = _trainer_execution(transformed_sr, cfg, tmp_path)
    job = json.loads(properties["custom_config"])["tfjob"]
    command = tfjob_trainer.worker_command(inputs, outputs, properties)
    manifest = tfjob_trainer.manifest_dict(tfjob_trainer.tfjob_manifest("gan-trainer-1", "ml-team", command, job))

    # The SDK reads the manifest back into its models without losing a field (a misspelt or unknown
    # key would be dropped), and it is the TFJob the operator expects.
    again = ApiClient()._ApiClient__deserialize(json.loads(json.dumps(manifest)), models.KubeflowOrgV1TFJob)
    assert ApiClient().sanitize_for_serialization(again) == manifest
    assert (manifest["apiVersion"], manifest["kind"]) == ("kubeflow.org/v1", "TFJob")
    worker = manifest["spec"]["tfReplicaSpecs"]["Worker"]
    assert (worker["replicas"], worker["restartPolicy"]) == (2, "OnFailure")
    container = worker["template"]["spec"]["containers"][0]
    assert (container["name"], container["image"]) == ("tensorflow", job["image"])
    assert "nvidia.com/gpu" not in container["resources"]["limits"]  # trainer_gpus 0 here
    args, beam = run_executor.parse_flags(container["command"][3:])  # run_executor's own flag parser
    assert not beam and args.executor_class_path == tfjob_trainer.WORKER_EXECUTOR
    assert "tfjob" not in json.loads(json.loads(args.exec_properties)["custom_config"])

    # The two pods: the container's command, TF_CONFIG as the operator sets it.
    procs = [subprocess.Popen([sys.executable] + container["command"][1:], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "TF_CONFIG": tf_config, "TF_USE_LEGACY_KERAS": "1"})
             for tf_config in tf_configs()]
    logs = [p.communicate(timeout=900)[0] for p in procs]
    for p, log in zip(procs, logs, strict=True):
        assert p.returncode == 0, log[-4000:]
        assert "strategy CollectiveAllReduceStrategy with 2 replica(s)" in log
        assert "Training complete. Model written to" in log  # TFX's GenericExecutor found the model
    serving = tmp_path / "model" / "Format-Serving"
    assert (serving / "saved_model.pb").exists()
    assert not [n for n in os.listdir(serving) if n.startswith("workertemp_")]
