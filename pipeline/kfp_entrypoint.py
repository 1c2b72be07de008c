"""The command of every task of the Kubeflow package: TFX's `kubeflow_v2_run_executor`, after two repairs
of the executor input that open-source KFP v2 hands over.

- Upstream artifacts arrive with an empty type (`{"instanceSchema": ""}`: the KFP driver does not keep an
  output's schema in ML Metadata, backend/src/v2/metadata/client.go), and TFX's entrypoint reads the
  artifact class from it, so every task with an input artifact fails (tensorflow/tfx#7768). The task's own
  input definitions (`--json_serialized_inputs_spec_args`, in the compiled spec) carry the schema: copied
  into every empty type.
- KFP >= 2.5 adds an `executor-logs` output of type `system.Artifact` that no TFX component declares:
  dropped.
And the Beam arguments get the pod's worker count: `--direct_num_workers=0` would mean the node's cores
(pipeline/pod_resources.py). Everything else passes through unchanged.
"""
from __future__ import annotations

import json
import sys
from typing import List

EXECUTOR_INPUT_FLAG = "--json_serialized_invocation_args"
INPUTS_SPEC_FLAG = "--json_serialized_inputs_spec_args"
KFP_LOG_OUTPUT = "executor-logs"


def repair_executor_input(executor_input: dict, inputs_spec: dict) -> dict:
    """The executor input with empty input artifact types filled from the inputs spec, KFP's log output dropped."""
    declared = inputs_spec.get("artifacts", {})
    for key, holder in executor_input.get("inputs", {}).get("artifacts", {}).items():
        schema = declared.get(key, {}).get("artifactType", {})
        for artifact in holder.get("artifacts", []):
            artifact_type = artifact.setdefault("type", {})
            if not any(artifact_type.get(k) for k in ("instanceSchema", "schemaTitle")) and schema:
                artifact["type"] = dict(schema)
    executor_input.get("outputs", {}).get("artifacts", {}).pop(KFP_LOG_OUTPUT, None)
    return executor_input


def repair_argv(argv: List[str]) -> List[str]:
    from pipeline.pod_resources import resolve_beam_args

    argv = resolve_beam_args(argv)
    spec = json.loads(argv[argv.index(INPUTS_SPEC_FLAG) + 1]) if INPUTS_SPEC_FLAG in argv else {}
    i = argv.index(EXECUTOR_INPUT_FLAG) + 1
    argv[i] = json.dumps(repair_executor_input(json.loads(argv[i]), spec))
    return argv


def main(argv: List[str] | None = None) -> None:
    from config import tf_env

    tf_env.apply()  # before TFX imports TensorFlow
    from absl import app
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor as tfx_entrypoint

    argv = repair_argv(sys.argv[1:] if argv is None else argv)
    app.run(tfx_entrypoint.main, argv=[sys.argv[0], *argv], flags_parser=tfx_entrypoint._parse_flags)


if __name__ == "__main__":
    main()
