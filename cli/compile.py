"""`gan-restore compile`: the pipeline as a Kubeflow Pipelines v2 package (pipeline/kubeflow_runner.py)."""
from __future__ import annotations

from cli.config_args import add_config_arguments, config_from_args
from config import ConfigError

HELP = "compile the pipeline into a Kubeflow Pipelines v2 package (YAML for open-source KFP)"


def add_arguments(parser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--output", default=None,
                        help="package file, .yaml (default: kubeflow.output_file, else <pipeline name>.yaml)")
    parser.add_argument("--tf_serving_config", default=None, metavar="FILE",
                        help="also add this pipeline's model to TF Serving's model config FILE, with the base "
                             "path the cluster's Pusher writes to (e.g. serving/deploy/k8s/models.config)")


def run(args) -> int:
    from pipeline.kubeflow_runner import cluster_config, compile_pipeline
    from serving.model_config import update_model_config

    cfg = config_from_args(args)
    try:
        path = compile_pipeline(cfg, args.output)
        if args.tf_serving_config:
            cluster = cluster_config(cfg)
            print(update_model_config(args.tf_serving_config, cluster.model_name, cluster.serving_dir))
    except ValueError as e:
        if isinstance(e, ConfigError):
            raise
        raise SystemExit(f"gan-restore compile: {e}") from None
    print(path)
    return 0
