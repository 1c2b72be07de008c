"""The deployment files for the official TF Serving image agree with TF Serving's protos and each other."""
import os
import shutil
import subprocess

import pytest
import yaml

from config import preset

DEPLOY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "serving", "deploy")


def _parse_model_config():
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    cfg = model_server_config_pb2.ModelServerConfig()
    with open(os.path.join(DEPLOY, "models.config")) as f:
        text_format.Parse(f.read(), cfg)  # raises ParseError on anything TF Serving would reject
    return cfg


def test_model_config_is_a_valid_model_server_config():
    cfg = _parse_model_config()
    models = {m.name: m for m in cfg.model_config_list.config}
    # One entry per task, named as the configuration names the pushed model.
    assert set(models) == {preset("tiny", task="sr").model_name, preset("tiny", task="deblur").model_name}
    for name, m in models.items():
        assert m.base_path == f"/models/{name}"
        assert m.model_platform == "tensorflow"
        assert m.model_version_policy.WhichOneof("policy_choice") == "latest"
        assert m.model_version_policy.latest.num_versions == 1


def test_local_server_reads_the_same_model_config(tmp_path):
    from serving.model_store import sources_from_config_file

    sources = sources_from_config_file(os.path.join(DEPLOY, "models.config"), base_override=str(tmp_path))
    assert {s.name: s.base_path for s in sources} == {n: str(tmp_path / n) for n in ("srgan", "deblurgan")}
    assert sources[0].policy([1, 3, 2]) == [3]  # latest { num_versions: 1 }


def test_batching_parameters_parse_as_tf_serving_batching_parameters():
    from serving.batching import BatchingParameters

    p = BatchingParameters.from_file(os.path.join(DEPLOY, "batching_parameters.txt"))  # TF Serving's fields only
    assert p.max_batch_size >= 1 and p.batch_timeout_micros > 0


def _yaml(path):
    with open(os.path.join(DEPLOY, path)) as f:
        return list(yaml.safe_load_all(f))


@pytest.fixture(scope="module")
def kustomized():
    """{kind: resource} of `kustomize build serving/deploy` (kubectl's built-in kustomize, or kustomize)."""
    tool = (["kubectl", "kustomize"] if shutil.which("kubectl") else ["kustomize", "build"]
            if shutil.which("kustomize") else None)
    if tool is None:
        pytest.skip("needs kubectl or kustomize on PATH to build the manifests")
    out = subprocess.run(tool + [DEPLOY], capture_output=True, text=True, check=True).stdout
    docs = list(yaml.safe_load_all(out))
    assert len({d["kind"] for d in docs}) == len(docs)
    return {d["kind"]: d for d in docs}


def test_kubernetes_manifests_wire_gpu_ports_config_and_metrics(kustomized):
    dep, svc, cm = kustomized["Deployment"], kustomized["Service"], kustomized["ConfigMap"]
    pod = dep["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    c = containers["tfserving"]
    assert c["image"] == "tensorflow/serving:2.16.1-gpu"
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"grpc": 8500, "http": 8501}
    args = dict(a[2:].split("=", 1) for a in c["args"])
    assert args["port"] == "8500" and args["rest_api_port"] == "8501" and args["enable_batching"] == "true"

    # Every file a flag names is in the generated ConfigMap, mounted at /config in both containers.
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert set(volumes) == {"config"}, "no claim: the models come from the Pusher's object storage"
    assert volumes["config"]["configMap"]["name"] == cm["metadata"]["name"]
    for container in containers.values():
        assert {m["name"]: m["mountPath"] for m in container["volumeMounts"]} == {"config": "/config"}
    for flag in ("model_config_file", "batching_parameters_file", "monitoring_config_file"):
        assert args[flag].startswith("/config/") and os.path.basename(args[flag]) in cm["data"], flag

    # Prometheus: the monitoring config enables the endpoint the pod annotations advertise.
    from google.protobuf import text_format

    from serving.tfs_protos import message_class
    monitoring = text_format.Parse(cm["data"]["monitoring.config"], message_class("MonitoringConfig")())
    assert monitoring.prometheus_config.enable
    annotations = dep["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == monitoring.prometheus_config.path == "/monitoring/prometheus/metrics"
    assert annotations["prometheus.io/port"] == str(ports["http"])

    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    assert {p["port"]: p["targetPort"] for p in svc["spec"]["ports"]} == {8500: "grpc", 8501: "http"}
    assert pod["serviceAccountName"] == kustomized["ServiceAccount"]["metadata"]["name"]


def test_the_deployment_serves_what_the_kubeflow_pusher_writes(kustomized):
    """k8s/models.config names each model's base path in the cluster's serving base (object storage the
    Kubeflow Pusher writes to), as `gan-restore compile --tf_serving_config` writes it for the defaults."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    from pipeline.kubeflow_runner import cluster_config

    cfg = model_server_config_pb2.ModelServerConfig()
    text_format.Parse(kustomized["ConfigMap"]["data"]["models.config"], cfg)
    served = {m.name: m.base_path for m in cfg.model_config_list.config}
    expected = {c.model_name: c.serving_dir for c in (cluster_config(preset("tiny", task=t)) for t in ("sr", "deblur"))}
    assert served == expected
    assert all(p.startswith("gs://") for p in served.values())  # TF Serving 2.16 reads gs://, not s3://


def test_readiness_probe_checks_every_served_model_in_a_sidecar(kustomized):
    import importlib.util

    pod = kustomized["Deployment"]["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    assert "readinessProbe" not in containers["tfserving"]  # its status endpoint passes too early
    probe = containers["readiness"]["readinessProbe"]["exec"]["command"]
    assert probe[:2] == ["python3", "/config/readiness_probe.py"]
    args = dict(zip(probe[2::2], probe[3::2], strict=True))
    assert args["--model_config"] == "/config/models.config" and args["--url"] == "http://127.0.0.1:8501"
    data = kustomized["ConfigMap"]["data"]
    with open(os.path.join(DEPLOY, "readiness_probe.py")) as f:
        assert data["readiness_probe.py"] == f.read()
    # The probe's stdlib reading of a model config finds the models protobuf finds.
    spec = importlib.util.spec_from_file_location("readiness_probe", os.path.join(DEPLOY, "readiness_probe.py"))
    probe_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe_module)
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    for text in (data["models.config"], open(os.path.join(DEPLOY, "models.config")).read()):
        cfg = model_server_config_pb2.ModelServerConfig()
        text_format.Parse(text, cfg)
        assert probe_module.model_names(text) == [m.name for m in cfg.model_config_list.config]


@pytest.mark.slow
def test_compile_writes_the_tf_serving_config_for_the_cluster_serving_base(tmp_path):
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    from cli import main as cli

    config = tmp_path / "models.config"
    for task in ("sr", "deblur"):
        assert cli.main(["compile", "--task", task, "--set", "kubeflow.pipeline_root=gs://my-bucket/gan",
                         "--output", str(tmp_path / f"{task}.yaml"), "--tf_serving_config", str(config)]) == 0
    cfg = model_server_config_pb2.ModelServerConfig()
    text_format.Parse(config.read_text(), cfg)
    assert {m.name: m.base_path for m in cfg.model_config_list.config} == {
        "srgan": "gs://my-bucket/gan/serving/srgan", "deblurgan": "gs://my-bucket/gan/serving/deblurgan"}


def test_compose_file_serves_the_config_on_both_ports():
    (compose,) = _yaml("docker-compose.yaml")
    s = compose["services"]["tfserving"]
    assert s["image"] == "tensorflow/serving:2.16.1-gpu"
    assert set(s["ports"]) == {"8500:8500", "8501:8501"}
    mounted = {v.split(":")[1]: v.split(":")[0] for v in s["volumes"]}
    for flag in ("model_config_file", "batching_parameters_file", "monitoring_config_file"):
        path = next(a.split("=", 1)[1] for a in s["command"] if a.startswith(f"--{flag}="))
        assert os.path.isfile(os.path.join(DEPLOY, mounted[path])), flag
    assert s["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]


def test_monitoring_config_parses_and_the_local_server_reads_the_same_path():
    from serving.metrics import prometheus_path

    assert prometheus_path(os.path.join(DEPLOY, "monitoring.config")) == "/monitoring/prometheus/metrics"
