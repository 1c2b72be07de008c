"""`gan-restore serve`: run the local TF Serving-compatible server over a model base directory."""
from __future__ import annotations

import argparse
import os

HELP = "serve pushed models over TF Serving's gRPC and REST APIs (local stand-in for TF Serving)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from pipeline.cli import add_config_arguments

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


def run(args: argparse.Namespace) -> int:
    from pipeline.cli import config_from_args
    from serving.local_server import LocalServer
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
    server = LocalServer.from_config(cfg, model_base=base, sources=sources, host=args.host, grpc_port=args.port,
                                     rest_port=args.rest_api_port, poll_seconds=args.file_system_poll_wait_seconds,
                                     threads=args.threads)
    server.serve_until_signalled()
    return 0
