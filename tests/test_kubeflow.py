"""Kubeflow Pipelines: the compiled v2 package (both tasks), the container image, scheduled retraining.

Real TFX KubeflowV2DagRunner compiles, kfp 2.5's own loaders read the packages back, and kfp's own
`Client.create_recurring_run` forms the schedule request (its REST stub replaced by a recorder).
No cluster and no Docker engine here, so nothing is submitted or built.
"""
import importlib.util
import json
import os
import re
import subprocess

import pytest

from cli import main as cli
from config import REPO_ROOT, preset
from pipeline import kubeflow_runner, schedule

IMAGE = "registry.example.com/ml/gan-restoration:test"
CLUSTER_BEAM_ARGS = ("--runner=PortableRunner", "--job_endpoint=flink-jobserver.flink:8099",
                     "--environment_type=EXTERNAL", "--environment_config=localhost:50000")
TRAINER_GPUS = 2


def _cluster_cfg(task):
    return preset("tiny", task=task).override({
        "kubeflow.image": IMAGE,
        "kubeflow.trainer_gpus": TRAINER_GPUS,
        "kubeflow.pipeline_root": "s3://ml-bucket/gan",
        "kubeflow.serving_base": "gs://models-bucket/serving",
        "kubeflow.beam_args": CLUSTER_BEAM_ARGS,
    })


@pytest.fixture(scope="module", params=["sr", "deblur"])
def compiled(request, tmp_path_factory):
    """(config, package path, PipelineSpec parsed by kfp) for each task's pipeline."""
    cfg = _cluster_cfg(request.param)
    path = kubeflow_runner.compile_pipeline(cfg, str(tmp_path_factory.mktemp("kfp") / "pipeline.yaml"))
    return cfg, path, kubeflow_runner.load_package(path)


def _trainer_task(spec):
    assert "Trainer" in spec.root.dag.tasks, sorted(spec.root.dag.tasks)
    return "Trainer"


def test_package_loads_with_kfp(compiled):
    import kfp.components

    cfg, path, spec = compiled
    component = kfp.components.load_component_from_file(path)  # kfp's component/pipeline YAML loader
    assert component.name == cfg.pipeline_name
    assert spec.schema_version == "2.1.0"  # the form KFP 2's own compiler writes (runtimeValue.constant)
    assert spec.default_pipeline_root == f"s3://ml-bucket/gan/{cfg.pipeline_name}"


def test_every_local_component_is_a_task_and_no_resolver(compiled):
    from tfx.dsl.components.common import resolver

    from pipeline import pipeline as pipeline_def

    cfg, _, spec = compiled
    local = pipeline_def.create_components(cfg).values()  # the local pipeline's nodes (Resolver baseline)
    assert any(isinstance(c, resolver.Resolver) for c in local)
    expected = {c.id for c in local if not isinstance(c, resolver.Resolver)}
    assert expected <= set(spec.root.dag.tasks), expected - set(spec.root.dag.tasks)
    assert not [n for n in spec.root.dag.tasks if "resolver" in n.lower()]
    assert "resolver" not in json.dumps(json.loads(_spec_json(spec))["deploymentSpec"]).lower()


def test_trainer_requests_gpus_and_every_task_runs_the_image(compiled):
    cfg, _, spec = compiled
    containers = kubeflow_runner.task_containers(spec)
    assert set(containers) == set(spec.root.dag.tasks)
    trainer = containers[_trainer_task(spec)]
    assert trainer.resources.accelerator.type == "nvidia.com/gpu"
    assert trainer.resources.accelerator.count == TRAINER_GPUS
    assert trainer.resources.cpu_limit == cfg.kubeflow.trainer_cpu
    assert trainer.resources.memory_limit == pytest.approx(32.0)  # "32G"
    for name, c in containers.items():
        assert c.image == IMAGE, name
        assert list(c.command) == kubeflow_runner.ENTRYPOINT == ["python", "-m", "pipeline.kfp_entrypoint"], name
        if c is not trainer:  # ImageExampleGen included (TFX leaves its resources out; we add them)
            assert c.resources.cpu_limit == cfg.kubeflow.component_cpu, name
            assert c.resources.memory_limit == pytest.approx(8.0), name
            assert not c.resources.accelerator.type, name


def test_trainer_config_has_cluster_gpus_and_object_storage(compiled):
    from config import Config

    cfg, _, spec = compiled
    custom = json.loads(kubeflow_runner.task_parameters(spec, _trainer_task(spec))["custom_config"])
    trainer_cfg = Config.from_json(custom["config"])
    assert trainer_cfg.train.num_gpus == TRAINER_GPUS  # > 1: MirroredStrategy in the run_fn
    assert trainer_cfg.data.root == "s3://ml-bucket/gan/data"
    assert trainer_cfg.checkpoint_root.startswith("s3://ml-bucket/gan/")
    assert trainer_cfg.task == cfg.task


def test_local_beam_args_replaced_by_cluster_ones(compiled):
    cfg, _, spec = compiled
    containers = kubeflow_runner.task_containers(spec)
    for name, c in containers.items():
        args = list(c.args)
        assert args[-len(CLUSTER_BEAM_ARGS):] == list(CLUSTER_BEAM_ARGS), name
        assert not set(cfg.beam_args) & set(args), name  # no local DirectRunner settings left
    example_gen = next(c for n, c in containers.items() if c.lifecycle.pre_cache_check.command)
    assert list(example_gen.lifecycle.pre_cache_check.args)[-len(CLUSTER_BEAM_ARGS):] == list(CLUSTER_BEAM_ARGS)


def test_evaluator_baseline_is_the_serving_dir(compiled):
    cfg, _, spec = compiled
    evaluators = [n for n in spec.root.dag.tasks
                  if "baseline_model_dir" in kubeflow_runner.task_parameters(spec, n)]
    assert len(evaluators) == 1
    params = kubeflow_runner.task_parameters(spec, evaluators[0])
    model_name = "srgan" if cfg.task == "sr" else "deblurgan"
    assert params["baseline_model_dir"] == f"gs://models-bucket/serving/{model_name}"
    assert "baseline_model" not in spec.root.dag.tasks[evaluators[0]].inputs.artifacts
    pusher = kubeflow_runner.task_parameters(spec, "Pusher")["push_destination"]
    assert f"gs://models-bucket/serving/{model_name}" in pusher  # pushes where the baseline is read


def test_dockerfile_provides_what_the_package_runs(compiled):
    """The image builds from files that exist, on the TFX image of the pinned version, and its
    import check covers every module the compiled spec names (command, executors, user functions)."""
    import tfx

    _, _, spec = compiled
    dockerfile = open(os.path.join(REPO_ROOT, "docker", "Dockerfile")).read()
    assert f"ARG BASE_IMAGE=gcr.io/tfx-oss-public/tfx:{tfx.__version__}" in dockerfile
    assert f"WORKDIR {kubeflow_runner.IMAGE_ROOT}\n" in dockerfile  # where relocated repo paths point
    for line in re.findall(r"^COPY (.+)$", dockerfile, re.M):
        for src in line.split()[:-1]:
            assert os.path.exists(os.path.join(REPO_ROOT, src)), f"COPY source {src} missing"
    checked = set(re.search(r'python -c "import ([^;"]+)', dockerfile).group(1).replace(" ", "").split(","))
    for module in checked:
        assert importlib.util.find_spec(module) is not None, module

    named = set()
    for c in kubeflow_runner.task_containers(spec).values():
        named.add(c.command[-1])
        if c.lifecycle.pre_cache_check.command:
            named.add(c.lifecycle.pre_cache_check.command[-1])
        args = list(c.args)
        named.add(args[args.index("--executor_class_path") + 1].rsplit(".", 1)[0])
    for name in spec.root.dag.tasks:
        for key in ("run_fn", "preprocessing_fn"):
            fn = kubeflow_runner.task_parameters(spec, name).get(key)
            if fn:
                named.add(fn.rsplit(".", 1)[0])
    entrypoints = {m for m in named if ".kubeflow.v2." in m}  # the commands the spec runs
    project = {m for m in named if not m.startswith("tfx.")}  # executors, run_fn, preprocessing_fn
    assert entrypoints and project, named
    assert entrypoints | project <= checked, (entrypoints | project) - checked
    for module in named - checked:  # stock TFX executors: part of the base image's tfx
        assert module.startswith("tfx.components.") and importlib.util.find_spec(module), module


def test_checked_in_files_are_read_from_the_image():
    from tfx import v1 as tfx

    schema_gen = tfx.components.ImportSchemaGen(schema_file=os.path.join(REPO_ROOT, "pipeline", "schema_folder.pbtxt"))
    kubeflow_runner.relocate_repo_paths([schema_gen])
    assert schema_gen.exec_properties["schema_file"] == "/pipeline/pipeline/schema_folder.pbtxt"


def test_make_image_target():
    out = subprocess.run(["make", "-n", "image", "IMAGE=reg.example/x:1"], cwd=REPO_ROOT, check=True,
                         capture_output=True, text=True).stdout
    assert "docker build -f docker/Dockerfile -t reg.example/x:1 ." in out


def test_cluster_locations_must_be_object_storage(tmp_path):
    cfg = preset("tiny").override({"kubeflow.data_root": str(tmp_path)})
    with pytest.raises(ValueError, match="kubeflow.data_root must be object storage"):
        kubeflow_runner.cluster_config(cfg)
    with pytest.raises(SystemExit, match="kubeflow.pipeline_root must be object storage"):
        cli.main(["compile", "--set", f"kubeflow.pipeline_root={tmp_path}", "--output", str(tmp_path / "p.yaml")])


def test_memory_quantities_follow_kfp_units():
    assert kubeflow_runner.memory_gb("32G") == 32.0
    assert kubeflow_runner.memory_gb("8Gi") == pytest.approx(8 * 2**30 / 1e9)
    assert kubeflow_runner.memory_gb("512M") == pytest.approx(0.512)
    with pytest.raises(ValueError, match="Invalid memory string"):
        kubeflow_runner.memory_gb("lots")


def test_schedule_dry_run_forms_a_recurring_run_request(compiled, capsys):
    cfg, path, _ = compiled
    args = ["schedule", "--preset", "tiny", "--task", cfg.task, "--set", "kubeflow.pipeline_root=s3://ml-bucket/gan",
            "--package", path, "--dry-run"]
    assert cli.main(args) == 0
    request = json.loads(capsys.readouterr().out)
    assert request["trigger"]["cron_schedule"]["cron"] == cfg.kubeflow.cron
    assert request["max_concurrency"] == 1 and request["no_catchup"] is True
    assert request["mode"] == "ENABLE" and request["display_name"] == schedule.job_name(cfg)
    # The Trainer's GPU placement travels with the spec, in kfp's {pipeline_spec, platform_spec} form.
    assert set(request["pipeline_spec"]) == {"pipeline_spec", "platform_spec"}
    assert set(request["pipeline_spec"]["platform_spec"]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]) == {
        "Trainer_executor"}
    spec = request["pipeline_spec"]["pipeline_spec"]
    assert spec["pipelineInfo"]["name"] == cfg.pipeline_name
    assert "Trainer" in spec["tasks"]
    assert request["runtime_config"]["pipeline_root"] == f"s3://ml-bucket/gan/{cfg.pipeline_name}"


def test_schedule_of_an_uploaded_pipeline_version():
    cfg = preset("tiny")
    request = schedule.recurring_run_request(cfg, pipeline_id="p-123", version_id="v-456", cron="0 30 2 * * *")
    assert request["pipeline_version_reference"] == {"pipeline_id": "p-123", "pipeline_version_id": "v-456"}
    assert "pipeline_spec" not in request
    assert request["trigger"]["cron_schedule"]["cron"] == "0 30 2 * * *"
    with pytest.raises(ValueError, match="6 fields"):
        schedule.recurring_run_request(cfg, pipeline_id="p", version_id="v", cron="30 2 * * *")
    with pytest.raises(ValueError, match="both --pipeline-id and --version-id"):
        schedule.recurring_run_request(cfg, pipeline_id="p")


def _spec_json(spec):
    from google.protobuf import json_format

    return json_format.MessageToJson(spec)


def test_ingestion_is_keyed_by_a_fingerprint_task_that_is_never_cached(compiled):
    """Open-source KFP runs no ExampleGen driver and keys its cache by inputs: the data's fingerprint
    reaches ImageExampleGen as a parameter from a task that runs every time (docs/kubeflow.md)."""
    _, _, spec = compiled
    tasks = json.loads(_spec_json(spec))["root"]["dag"]["tasks"]
    assert tasks["DataFingerprint"].get("cachingOptions", {}).get("enableCache") is not True
    assert all(t["cachingOptions"]["enableCache"] for name, t in tasks.items() if name != "DataFingerprint")
    source = tasks["ImageExampleGen"]["inputs"]["parameters"]["data_fingerprint"]["taskOutputParameter"]
    assert source == {"producerTask": "DataFingerprint", "outputParameterKey": "fingerprint"}  # not "_task"
    assert "DataFingerprint" in tasks["ImageExampleGen"]["dependentTasks"]


def test_warm_start_on_kubeflow_reads_the_serving_directory(tmp_path):
    from models.trainer import WARM_START_FROM

    cfg = _cluster_cfg("sr").override({"train.warm_start": True})
    spec = kubeflow_runner.load_package(kubeflow_runner.compile_pipeline(cfg, str(tmp_path / "p.yaml")))
    custom = json.loads(kubeflow_runner.task_parameters(spec, _trainer_task(spec))["custom_config"])
    assert custom[WARM_START_FROM] == "gs://models-bucket/serving/srgan"
    assert "base_model" not in spec.root.dag.tasks[_trainer_task(spec)].inputs.artifacts


def test_the_entrypoint_repairs_what_open_source_kfp_hands_over():
    """Upstream artifacts arrive with an empty type (the KFP driver keeps no schema in ML Metadata) and
    KFP >= 2.5 adds an executor-logs output: the entrypoint fills the one and drops the other, and gives
    Beam the pod's worker count."""
    from pipeline import kfp_entrypoint
    from pipeline.pod_resources import read_limits

    schema = "title: tfx.Examples\ntype: object\n"
    executor_input = {
        "inputs": {"artifacts": {"examples": {"artifacts": [
            {"name": "17", "type": {"instanceSchema": ""}, "uri": "gs://r/ExampleGen/examples"}]}}},
        "outputs": {"artifacts": {
            "statistics": {"artifacts": [{"type": {"instanceSchema": "title: tfx.ExampleStatistics\n"},
                                          "uri": "gs://r/StatisticsGen/statistics"}]},
            "executor-logs": {"artifacts": [{"type": {"schemaTitle": "system.Artifact"}, "uri": "gs://r/logs"}]}}}}
    inputs_spec = {"artifacts": {"examples": {"artifactType": {"instanceSchema": schema}}}}
    argv = ["--executor_class_path", "x.Executor", "--json_serialized_invocation_args", json.dumps(executor_input),
            "--json_serialized_inputs_spec_args", json.dumps(inputs_spec), "--direct_num_workers=0"]
    repaired = kfp_entrypoint.repair_argv(argv)
    fixed = json.loads(repaired[3])
    assert fixed["inputs"]["artifacts"]["examples"]["artifacts"][0]["type"] == {"instanceSchema": schema}
    assert list(fixed["outputs"]["artifacts"]) == ["statistics"]
    assert repaired[:3] + repaired[4:-1] == argv[:3] + argv[4:-1]
    assert repaired[-1] == f"--direct_num_workers={read_limits().beam_workers()}"
