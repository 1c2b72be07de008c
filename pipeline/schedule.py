"""`gan-restore schedule`: scheduled retraining on Kubeflow Pipelines.

Creates (or replaces: KFP has no update for recurring runs) a recurring run of the compiled pipeline
package, or of an uploaded pipeline version, with the config's cron expression, at most one run at a
time and no catch-up of missed runs. `--dry-run` forms the same request through kfp's own
`Client.create_recurring_run` code path and prints the JSON body it would send, without a cluster.
"""
from __future__ import annotations

import json
import logging

from pipeline.cli import add_config_arguments, config_from_args

HELP = "create or update the recurring (scheduled retraining) run on Kubeflow Pipelines"
log = logging.getLogger(__name__)

# KFP's scheduled workflows use 6-field cron (seconds first): "0 0 3 * * 0" is Sunday 03:00:00.
CRON_FIELDS = 6


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


def check_cron(cron: str) -> str:
    if len(cron.split()) != CRON_FIELDS:
        raise ValueError(f"KFP cron needs {CRON_FIELDS} fields (seconds minutes hours day-of-month month "
                         f"day-of-week), got {cron!r}")
    return cron


class _RecordingRecurringRunApi:
    """Stands where kfp's REST stub would, to capture the request body in --dry-run."""

    def __init__(self):
        self.body = None

    def create_recurring_run(self, body):
        self.body = body
        return body


def recurring_run_request(cfg, package: str | None = None, pipeline_id: str | None = None,
                          version_id: str | None = None, experiment_id: str = "dry-run-experiment",
                          cron: str | None = None) -> dict:
    """The JSON body kfp's Client would POST to create the recurring run (no cluster contacted)."""
    import kfp
    import kfp_server_api

    client = kfp.Client.__new__(kfp.Client)  # skip __init__: it connects to a cluster
    client._recurring_run_api = _RecordingRecurringRunApi()
    body = client.create_recurring_run(**_run_arguments(cfg, experiment_id, package, pipeline_id, version_id, cron))
    # Serialised exactly as kfp's REST client does before sending.
    return kfp_server_api.ApiClient().sanitize_for_serialization(body)


def _run_arguments(cfg, experiment_id, package, pipeline_id, version_id, cron) -> dict:
    from pipeline.kubeflow_runner import cluster_config

    if (pipeline_id is None) != (version_id is None):
        raise ValueError("an uploaded pipeline needs both --pipeline-id and --version-id")
    return dict(
        experiment_id=experiment_id,
        job_name=job_name(cfg),
        description=f"Scheduled retraining of {cfg.pipeline_name} ({cfg.task})",
        cron_expression=check_cron(cron or cfg.kubeflow.cron),
        max_concurrency=1,  # never two retrainings at once: they would race for the same blessing
        no_catchup=True,  # a paused schedule resumes with one run, not a backfill of every missed one
        pipeline_package_path=package,
        pipeline_id=pipeline_id,
        version_id=version_id,
        pipeline_root=cluster_config(cfg).pipeline_root,  # the root the package was compiled for
        enabled=True,
    )


def job_name(cfg) -> str:
    return f"{cfg.pipeline_name}-retraining"


def run(args) -> int:
    cfg = config_from_args(args)
    try:
        return _run(cfg, args)
    except ValueError as e:
        raise SystemExit(f"gan-restore schedule: {e}") from None


def _run(cfg, args) -> int:
    package = args.package
    if not package and not args.pipeline_id:
        from pipeline import kubeflow_runner

        package = kubeflow_runner.compile_pipeline(cfg)
        log.info("compiled %s", package)
    if args.dry_run:
        request = recurring_run_request(cfg, package, args.pipeline_id, args.version_id, cron=args.cron)
        spec = request.get("pipeline_spec")
        if spec:  # the whole pipeline spec is long; show what identifies it
            request["pipeline_spec"] = {"pipelineInfo": spec.get("pipelineInfo"),
                                        "defaultPipelineRoot": spec.get("defaultPipelineRoot"),
                                        "tasks": sorted(spec.get("root", {}).get("dag", {}).get("tasks", {}))}
        print(json.dumps(request, indent=2, sort_keys=True))
        return 0

    import kfp

    host = args.host or cfg.kubeflow.host
    if not host:
        raise SystemExit("gan-restore schedule: no KFP host (--host or --set kubeflow.host=...)")
    client = kfp.Client(host=host, **({"namespace": args.namespace} if args.namespace else {}))
    experiment = client.create_experiment(cfg.kubeflow.experiment, namespace=args.namespace)  # get or create
    # "Update": KFP recurring runs cannot be edited, so replace the one with our name.
    existing = client.list_recurring_runs(experiment_id=experiment.experiment_id, page_size=100,
                                          namespace=args.namespace)
    for rr in existing.recurring_runs or []:
        if rr.display_name == job_name(cfg):
            log.info("replacing recurring run %s", rr.recurring_run_id)
            client.delete_recurring_run(rr.recurring_run_id)
    created = client.create_recurring_run(
        **_run_arguments(cfg, experiment.experiment_id, package, args.pipeline_id, args.version_id, args.cron))
    print(f"recurring run {created.recurring_run_id}: {job_name(cfg)} cron={args.cron or cfg.kubeflow.cron} "
          f"in experiment {cfg.kubeflow.experiment} on {host}")
    return 0
