"""`gan-restore serve`: run the local TF Serving-compatible server over a model base directory."""
from __future__ import annotations

import argparse
import logging
import os

from cli.config_args import add_config_arguments, config_from_args

HELP = "serve pushed models over TF Serving's gRPC and REST APIs (local stand-in for TF Serving)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    g = parser.add_argument_group("models (TF Serving's flags)")
    g.add_argument("--model_base", default=None,
                   help="serve every model under this directory (<base>/<name>/<version>/); "
                        "default: the configuration's serving base")
    g.add_argument("--model_name", default=None, help="serve only this model (with --model_base_path)")
    g.add_argument("--model_base_path", default=None, help="version directories of --model_name")
    g.add_argument("--model_config_file", default=None,
                   help="a TF Serving model_config_list file (e.g. serving/deploy/models.config); with "
                        "--model_base, each model is read from <model_base>/<name> instead of its base_path")
    g = parser.add_argument_group("server")
    g.add_argument("--host", default="0.0.0.0", help="address to bind (127.0.0.1: this machine only)")
    g.add_argument("--port", type=int, default=None, help="gRPC port (default: serving.grpc_port)")
    g.add_argument("--rest_api_port", type=int, default=None,
                   help="REST port, 0 disables REST (default: serving.rest_port)")
    g.add_argument("--file_system_poll_wait_seconds", type=float, default=None,
                   help="model directory poll period (default: serving.poll_seconds)")
    g.add_argument("--threads", type=int, default=None, help="request threads per protocol "
                                                             "(default: serving.server_threads)")
    g.add_argument("--any_free_ports", action="store_true",
                   help="bind gRPC and REST to free ports the system chooses; the log line 'gRPC on ..., REST on ...' "
                        "names them (tests, benchmarks)")
    g.add_argument("--log_request_starts", action="store_true",
                   help="also log a line when each request starts and each REST connection opens or closes "
                        "(to see what is in flight)")
    g = parser.add_argument_group("batching, warm-up, monitoring (TF Serving's flags)")
    g.add_argument("--enable_batching", action="store_true",
                   help="batch concurrent requests to a signature, as TF Serving does (docs/serving.md)")
    g.add_argument("--batching_parameters_file", default=None,
                   help="text BatchingParameters, e.g. serving/deploy/batching_parameters.txt (default: TF "
                        "Serving's defaults); implies --enable_batching")
    g.add_argument("--enable_model_warmup", type=_flag, default=True, metavar="true|false",
                   help="replay <version>/assets.extra/tf_serving_warmup_requests before a version is "
                        "AVAILABLE (default: true)")
    g.add_argument("--monitoring_config_file", default=None,
                   help="text MonitoringConfig, e.g. serving/deploy/monitoring.config: Prometheus metrics on "
                        "the REST port at its path")


def _flag(text: str) -> bool:
    if text.lower() not in ("true", "false", "1", "0"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return text.lower() in ("true", "1")


def run(args: argparse.Namespace) -> int:
    from serving.batching import BatchingParameters
    from serving.local_server import LocalServer
    from serving.metrics import prometheus_path
    from serving.model_store import ModelSource, sources_from_config_file

    cfg = config_from_args(args)
    sources, base = None, ""
    if args.model_config_file:
        sources = sources_from_config_file(args.model_config_file, base_override=args.model_base or "")
    elif args.model_base_path:
        sources = [ModelSource(args.model_name or cfg.model_name, args.model_base_path)]
    else:
        base = args.model_base or os.path.dirname(cfg.serving_dir)
        if args.model_name:
            sources = [ModelSource(args.model_name, os.path.join(base, args.model_name))]
    if args.log_request_starts:
        for name in ("serving.requests", "serving.http"):
            logging.getLogger(name).setLevel(logging.DEBUG)
    ports = dict(grpc_port=0, rest_port=LocalServer.ANY_PORT) if args.any_free_ports else dict(
        grpc_port=args.port, rest_port=args.rest_api_port)
    batching = None
    if args.batching_parameters_file:
        batching = BatchingParameters.from_file(args.batching_parameters_file)
    elif args.enable_batching:
        batching = BatchingParameters()
    metrics_path = prometheus_path(args.monitoring_config_file) if args.monitoring_config_file else ""
    server = LocalServer.from_config(cfg, model_base=base, sources=sources, host=args.host,
                                     poll_seconds=args.file_system_poll_wait_seconds, threads=args.threads,
                                     batching=batching, warmup=args.enable_model_warmup, metrics_path=metrics_path,
                                     **ports)
    server.serve_until_signalled()
    return 0
