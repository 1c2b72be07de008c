"""Scheduled retraining on Kubeflow Pipelines (`gan-restore schedule`, cli/schedule.py).

Creates (or replaces: KFP has no update for recurring runs) a recurring run of the compiled pipeline
package, or of an uploaded pipeline version, with the config's cron expression, at most one run at a
time and no catch-up of missed runs. `--dry-run` forms the same request through kfp's own
`Client.create_recurring_run` code path and prints the JSON body it would send, without a cluster.
"""
from __future__ import annotations

import logging

from config.checks import check_cron

log = logging.getLogger(__name__)


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


def dry_run_request(cfg, package: str | None, pipeline_id: str | None, version_id: str | None,
                    cron: str | None) -> dict:
    """The request `schedule` would send, with the long pipeline spec shortened to what identifies it.
    A package with a Kubernetes platform spec travels as {"pipeline_spec": ..., "platform_spec": ...}
    (kfp's form); the platform spec is shown in full."""
    request = recurring_run_request(cfg, package, pipeline_id, version_id, cron=cron)
    body = request.get("pipeline_spec")
    spec = body.get("pipeline_spec", body) if body else None
    if spec:
        short = {"pipelineInfo": spec.get("pipelineInfo"), "defaultPipelineRoot": spec.get("defaultPipelineRoot"),
                 "tasks": sorted(spec.get("root", {}).get("dag", {}).get("tasks", {}))}
        request["pipeline_spec"] = {**body, "pipeline_spec": short} if spec is not body else short
    return request


def schedule(cfg, host: str, namespace: str | None, package: str | None, pipeline_id: str | None,
             version_id: str | None, cron: str | None):
    """Create the recurring run on the KFP at `host`, replacing the one of the same name (KFP recurring
    runs cannot be edited). Returns kfp's recurring run object."""
    import kfp

    client = kfp.Client(host=host, **({"namespace": namespace} if namespace else {}))
    experiment = client.create_experiment(cfg.kubeflow.experiment, namespace=namespace)  # get or create
    existing = client.list_recurring_runs(experiment_id=experiment.experiment_id, page_size=100, namespace=namespace)
    for rr in existing.recurring_runs or []:
        if rr.display_name == job_name(cfg):
            log.info("replacing recurring run %s", rr.recurring_run_id)
            client.delete_recurring_run(rr.recurring_run_id)
    return client.create_recurring_run(
        **_run_arguments(cfg, experiment.experiment_id, package, pipeline_id, version_id, cron))
