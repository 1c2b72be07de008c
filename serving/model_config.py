"""TF Serving's --model_config_file (text ModelServerConfig): one entry per served model, its base path
where the Pusher writes (`<serving base>/<model name>`), serving the latest version.

`gan-restore compile --tf_serving_config FILE` writes this pipeline's model into FILE with the cluster's
serving base, so the Deployment reads exactly what the Kubeflow Pusher writes; other models already in
FILE are kept (compile the SR and the deblur pipelines into one file to serve both).
"""
from __future__ import annotations

import os

HEADER = """\
# TF Serving model configuration (text ModelServerConfig), passed as --model_config_file.
# Written by `gan-restore compile --tf_serving_config <this file>`: each model's base_path is where the
# Kubeflow Pusher writes it (<kubeflow.serving_base>/<model name>/<version>/). Serve the latest version.
"""


def update_model_config(path: str, name: str, base_path: str) -> str:
    """Add or replace model `name` (base path `base_path`, latest version) in the config file at `path`."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    cfg = model_server_config_pb2.ModelServerConfig()
    if os.path.exists(path):
        with open(path) as f:
            text_format.Parse(f.read(), cfg)
    models = cfg.model_config_list.config
    entry = next((m for m in models if m.name == name), None) or models.add(name=name)
    entry.base_path = base_path
    entry.model_platform = "tensorflow"
    entry.model_version_policy.latest.num_versions = 1
    with open(path, "w") as f:
        f.write(HEADER + text_format.MessageToString(cfg))
    return path
