"""The deployment files for the official TF Serving image agree with TF Serving's protos and each other."""
import os
import re

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


def test_batching_parameters_use_batching_parameters_fields():
    known = {"max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads",
             "thread_pool_name", "allowed_batch_sizes", "pad_variable_length_inputs"}
    fields = {}
    with open(os.path.join(DEPLOY, "batching_parameters.txt")) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            m = re.fullmatch(r"(\w+)\s*(?:\{\s*value:\s*(\d+)\s*\}|:\s*(\w+))", line)
            assert m, f"not a BatchingParameters text-proto line: {line!r}"
            fields[m[1]] = m[2] or m[3]
    assert set(fields) <= known
    assert int(fields["max_batch_size"]) >= 1 and int(fields["batch_timeout_micros"]) > 0


def _yaml(path):
    with open(os.path.join(DEPLOY, path)) as f:
        return list(yaml.safe_load_all(f))


def test_kubernetes_manifests_wire_gpu_ports_probe_and_config():
    (dep,) = _yaml("k8s/deployment.yaml")
    (svc,) = _yaml("k8s/service.yaml")
    (kust,) = _yaml("kustomization.yaml")
    names = {m.name for m in _parse_model_config().model_config_list.config}

    assert dep["kind"] == "Deployment" and svc["kind"] == "Service"
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    assert c["image"] == "tensorflow/serving:2.16.1-gpu"
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"grpc": 8500, "http": 8501}
    args = dict(a[2:].split("=", 1) for a in c["args"])
    assert args["port"] == "8500" and args["rest_api_port"] == "8501"
    assert args["batching_parameters_file"].startswith("/config/")

    probe = c["readinessProbe"]["httpGet"]
    assert probe["port"] == "http"
    assert re.fullmatch(r"/v1/models/(\w+)", probe["path"])[1] in names

    # The config files reach the container through the generated ConfigMap mounted at /config.
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    gen = {g["name"]: g["files"] for g in kust["configMapGenerator"]}
    assert volumes["config"]["configMap"]["name"] in gen and mounts["config"] == "/config"
    assert {os.path.basename(args["model_config_file"]), os.path.basename(args["batching_parameters_file"])} \
        == set(gen["tfserving-config"])
    assert mounts["models"] == "/models"
    for r in kust["resources"] + gen["tfserving-config"]:
        assert os.path.isfile(os.path.join(DEPLOY, r)), r

    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    assert {p["port"]: p["targetPort"] for p in svc["spec"]["ports"]} == {8500: "grpc", 8501: "http"}


def test_compose_file_serves_the_config_on_both_ports():
    (compose,) = _yaml("docker-compose.yaml")
    s = compose["services"]["tfserving"]
    assert s["image"] == "tensorflow/serving:2.16.1-gpu"
    assert set(s["ports"]) == {"8500:8500", "8501:8501"}
    mounted = {v.split(":")[1]: v.split(":")[0] for v in s["volumes"]}
    assert os.path.isfile(os.path.join(DEPLOY, mounted["/config/models.config"]))
    assert "--model_config_file=/config/models.config" in s["command"]
    assert s["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
