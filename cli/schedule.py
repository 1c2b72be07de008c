"""`gan-restore schedule`: create or update the recurring retraining run on Kubeflow Pipelines
(pipeline/schedule.py); `--dry-run` prints the request kfp would send, with no cluster. The package it
compiles warm-starts each retraining from the served model (`train.warm_start=true`, unless set)."""
from __future__ import annotations

import json
import logging

from cli.config_args import add_config_arguments, config_from_args
from config import ConfigError

HELP = "create or update the recurring (scheduled retraining) run on Kubeflow Pipelines"
log = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    add_config_arguments(parser)
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--package", default=None,
                     help="compiled pipeline package (.yaml); default: compile it now (`gan-restore compile`)")
    src.add_argument("--pipeline-id", default=None, help="an uploaded pipeline's id (with --version-id)")
    parser.add_argument("--version-id", default=None, help="the uploaded pipeline version's id")
    parser.add_argument("--host", default=None, help="KFP API endpoint (default: kubeflow.host from the config)")
    parser.add_argument("--namespace", default=None, help="Kubernetes namespace (multi-user KFP)")
    parser.add_argument("--cron", default=None,
                        help="6-field cron with seconds, e.g. '0 0 3 * * 0' (default: kubeflow.cron)")
    parser.add_argument("--dry-run", action="store_true", help="print the request; contact no cluster")


def run(args) -> int:
    from pipeline import kubeflow_runner, schedule

    cfg = config_from_args(args)
    if not any(item.strip().startswith("train.warm_start=") for item in args.set):
        cfg = cfg.override({"train.warm_start": True})  # retraining starts from the model being served
    try:
        package = args.package
        if not package and not args.pipeline_id:
            package = kubeflow_runner.compile_pipeline(cfg)
            log.info("compiled %s", package)
        if args.dry_run:
            request = schedule.dry_run_request(cfg, package, args.pipeline_id, args.version_id, args.cron)
            print(json.dumps(request, indent=2, sort_keys=True))
            return 0
        host = args.host or cfg.kubeflow.host
        if not host:
            raise SystemExit("gan-restore schedule: no KFP host (--host or --set kubeflow.host=...)")
        created = schedule.schedule(cfg, host, args.namespace, package, args.pipeline_id, args.version_id, args.cron)
    except ValueError as e:
        if isinstance(e, ConfigError):
            raise
        raise SystemExit(f"gan-restore schedule: {e}") from None
    print(f"recurring run {created.recurring_run_id}: {schedule.job_name(cfg)} cron={args.cron or cfg.kubeflow.cron} "
          f"in experiment {cfg.kubeflow.experiment} on {host}")
    return 0
