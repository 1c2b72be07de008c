"""What a local run did, read back from its ML Metadata: which components ran or came from the cache
(and how long each took), its output artifacts, and a summary text (what `gan-restore demo` prints:
where the pushed model, the TensorBoard logs and the evaluation report are, and how the model compares
with its baseline on the eval images). Also used by benchmarks/datapath.py for stage times.
"""
from __future__ import annotations

import json
import os

from config import Config

_STATES = {3: "ran", 5: "cached", 4: "failed", 6: "canceled", 2: "running"}


def run_summary(cfg: Config) -> dict:
    """The latest run of `cfg`'s pipeline: component states/durations and the output artifacts."""
    import ml_metadata as mlmd
    from tfx.orchestration import metadata

    store = mlmd.MetadataStore(metadata.sqlite_metadata_connection_config(cfg.metadata_path))
    runs = store.get_contexts_by_type("pipeline_run")
    runs = [r for r in runs if _in_pipeline(store, r, cfg.pipeline_name)]
    if not runs:
        raise RuntimeError(f"no run of {cfg.pipeline_name} in {cfg.metadata_path}")
    latest = max(runs, key=lambda c: c.create_time_since_epoch)
    components = []
    outputs = {}
    for ex in sorted(store.get_executions_by_context(latest.id), key=lambda e: e.create_time_since_epoch):
        node = next((c.name.split(".", 1)[-1] for c in store.get_contexts_by_execution(ex.id)
                     if store.get_context_types_by_id([c.type_id])[0].name == "node"), str(ex.type_id))
        seconds = (ex.last_update_time_since_epoch - ex.create_time_since_epoch) / 1000.0
        components.append((node, _STATES.get(ex.last_known_state, str(ex.last_known_state)), seconds))
        out_ids = [e.artifact_id for e in store.get_events_by_execution_ids([ex.id])
                   if e.type in (mlmd.proto.Event.OUTPUT, mlmd.proto.Event.DECLARED_OUTPUT)]
        for a in store.get_artifacts_by_id(out_ids):
            type_name = store.get_artifact_types_by_id([a.type_id])[0].name
            outputs[type_name] = a
    return {"components": components, "outputs": outputs}


def _in_pipeline(store, run_context, pipeline_name: str) -> bool:
    # pipeline_run contexts are named by run id; their executions share the pipeline context.
    pipelines = store.get_contexts_by_type("pipeline")
    ids = {c.id for c in pipelines if c.name == pipeline_name}
    executions = store.get_executions_by_context(run_context.id)
    return bool(executions) and any(
        c.id in ids for c in store.get_contexts_by_execution(executions[0].id))


def _prop(artifact, name: str):
    if name in artifact.custom_properties:
        v = artifact.custom_properties[name]
        return v.string_value or v.int_value
    return None


def summary_text(cfg: Config, summary: dict, seconds: float) -> str:
    comps = summary["components"]
    outputs = summary["outputs"]
    cached = sum(1 for _, state, _ in comps if state == "cached")
    lines = ["", f"demo finished in {_duration(seconds)}: {cfg.task} pipeline '{cfg.pipeline_name}', "
             f"{len(comps)} components, {cached} reused from the cache", ""]
    lines += [f"  {name:32s} {state:7s} {_duration(t)}" for name, state, t in comps]
    lines.append("")

    pushed = outputs.get("PushedModel")
    if pushed is not None and _prop(pushed, "pushed") == 1:
        dest = _prop(pushed, "pushed_destination")
        lines.append(f"pushed model       {dest}")
        lines.append(f"  serve it:        gan-restore serve --model_base {os.path.dirname(os.path.dirname(dest))}")
    else:
        lines.append("pushed model       none (the model was not blessed; see the report)")
    run = outputs.get("ModelRun")
    if run is not None:
        lines.append(f"TensorBoard logs   tensorboard --logdir {run.uri}")
    evaluation = outputs.get("ModelEvaluation")
    if evaluation is not None:
        lines.append(f"report             {os.path.join(evaluation.uri, 'report.html')}  (grid.png, report.md)")
        lines += _metrics_lines(os.path.join(evaluation.uri, "metrics.json"))
    return "\n".join(lines)


def _metrics_lines(path: str) -> list:
    if not os.path.exists(path):
        return [f"  (no metrics file at {path})"]
    with open(path) as f:
        m = json.load(f)
    means = m.get("means", {})
    model, base = means.get("model", {}), means.get("baseline", {})
    name = m.get("baseline_name", "baseline")
    lines = [f"eval images ({m.get('num_images', '?')}), Y channel, published protocol:"]
    for metric, unit, fmt in (("psnr_y", " dB", "{:.2f}"), ("ssim_y", "", "{:.4f}")):
        if metric in model and metric in base:
            gain = model[metric] - base[metric]
            lines.append(f"  {metric.upper():7s} model {fmt.format(model[metric])}{unit}   {name} "
                         f"{fmt.format(base[metric])}{unit}   ({'+' if gain >= 0 else ''}{fmt.format(gain)})")
    gate = m.get("gate", {})
    if gate:
        lines.append(f"gate               {gate.get('message', '')}")
    return lines


def _duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"
