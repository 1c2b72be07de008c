"""ImageEvaluator: the PSNR/SSIM gate for image-restoration models, as a TFX component.

Why not the stock Evaluator (TFMA): see docs/evaluation.md. This component emits the SAME artifacts
the stock Evaluator does, so the stock Pusher and `LatestBlessedModelStrategy` work unchanged:
- `blessing` (ModelBlessing): a `BLESSED` or `NOT_BLESSED` file in its uri; custom properties
  `blessed` (1/0), `current_model` (uri), `current_model_id`, and, when a baseline artifact was
  given, `baseline_model` (uri) and `baseline_model_id`, as tfx/components/evaluator/executor.py sets
  them. Beyond the stock ones: `blessing_message` (the stock constant's name) says why, and the
  BLESSED/NOT_BLESSED file holds the same sentence; `gate.json` holds every check.
- `evaluation` (ModelEvaluation): the human report (models/report.py: metrics.json/.csv, grid.png,
  report.md, report.html).

The baseline (the latest blessed model) comes either from the `baseline_model` channel (a Resolver
with LatestBlessedModelStrategy; local runs) or from `baseline_model_dir`, a TF Serving model base
path `<serving base>/<model name>` whose newest version is used (Kubeflow, where Resolver nodes do
not run). Neither, or an empty serving dir: the first model is judged on the absolute bounds only.

Wiring:
    ImageEvaluator(examples=transform.outputs['transformed_examples'], model=trainer.outputs['model'],
                   baseline_model=resolver.outputs['model'], custom_config={'config': cfg.to_json()})
"""
from __future__ import annotations

import json
import logging
import os
from typing import Any, Dict, List

from tfx import types
from tfx.components.evaluator import constants
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter
from tfx.types.system_executions import Evaluate
from tfx.utils import io_utils, path_utils

EXAMPLES_KEY = "examples"
MODEL_KEY = "model"
BASELINE_MODEL_KEY = "baseline_model"
EVALUATION_KEY = "evaluation"
BLESSING_KEY = "blessing"
CUSTOM_CONFIG_KEY = "custom_config"
BASELINE_MODEL_DIR_KEY = "baseline_model_dir"
EXAMPLE_SPLIT_KEY = "example_split"
GATE_FILE = "gate.json"

log = logging.getLogger(__name__)


class ImageEvaluatorSpec(ComponentSpec):
    PARAMETERS = {
        # JSON of {"config": Config.to_json()}, like the Trainer's custom_config.
        CUSTOM_CONFIG_KEY: ExecutionParameter(type=str),
        # TF Serving base path of the pushed model (<serving base>/<model name>); its newest version is
        # the baseline when no baseline_model artifact is given (Kubeflow).
        BASELINE_MODEL_DIR_KEY: ExecutionParameter(type=str, optional=True),
        EXAMPLE_SPLIT_KEY: ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {
        EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        BASELINE_MODEL_KEY: ChannelParameter(type=standard_artifacts.Model, optional=True),
    }
    OUTPUTS = {
        EVALUATION_KEY: ChannelParameter(type=standard_artifacts.ModelEvaluation),
        BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing),
    }
    TYPE_ANNOTATION = Evaluate


def model_dir_of(model: types.Artifact) -> str:
    """The SavedModel directory of a Model artifact (Trainer: <uri>/Format-Serving)."""
    return path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model))


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        from config import Config
        from models import report
        from models.gate import gate
        from models.scoring import evaluate_split

        self._log_startup(input_dict, output_dict, exec_properties)
        cfg = Config.from_json(json.loads(exec_properties[CUSTOM_CONFIG_KEY])["config"])
        split = exec_properties.get(EXAMPLE_SPLIT_KEY) or "eval"
        split_uri = artifact_utils.get_split_uri(input_dict[EXAMPLES_KEY], split)
        model = artifact_utils.get_single_instance(input_dict[MODEL_KEY])
        baseline_artifact = _single_or_none(input_dict.get(BASELINE_MODEL_KEY))
        baseline_dir = self._baseline_dir(baseline_artifact, exec_properties.get(BASELINE_MODEL_DIR_KEY) or "")

        result = evaluate_split(cfg, split_uri, model_dir_of(model), baseline_dir)
        decision = gate(cfg.eval, result)

        evaluation_artifact = artifact_utils.get_single_instance(output_dict[EVALUATION_KEY])
        paths = report.write_report(result, decision, evaluation_artifact.uri)
        blessing = artifact_utils.get_single_instance(output_dict[BLESSING_KEY])
        write_blessing(blessing, decision, model, baseline_artifact, baseline_dir)
        (log.info if decision.blessed else log.warning)("%s (report: %s)", decision.message,
                                                        paths.get("report.html"))

    @staticmethod
    def _baseline_dir(artifact: types.Artifact | None, serving_base: str) -> str:
        if artifact is not None:
            return model_dir_of(artifact)
        if serving_base:
            from contracts.serving_layout import latest_version_dir

            latest = latest_version_dir(serving_base)
            log.info("baseline from serving dir %s: %s", serving_base, latest or "no version pushed yet")
            return latest
        return ""


def write_blessing(blessing: types.Artifact, decision, model: types.Artifact,
                   baseline_artifact: types.Artifact | None, baseline_dir: str) -> None:
    """The stock Evaluator's ModelBlessing contract, plus the reason (file content, property, gate.json)."""
    blessing.set_string_custom_property(constants.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY, model.uri)
    blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY, model.id)
    if baseline_artifact is not None:
        blessing.set_string_custom_property(constants.ARTIFACT_PROPERTY_BASELINE_MODEL_URI_KEY, baseline_artifact.uri)
        blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY, baseline_artifact.id)
    elif baseline_dir:  # serving-dir route: there is no artifact id to record
        blessing.set_string_custom_property(constants.ARTIFACT_PROPERTY_BASELINE_MODEL_URI_KEY, baseline_dir)
    blessing.set_string_custom_property(constants.ARTIFACT_PROPERTY_BLESSING_MESSAGE_KEY, decision.message)
    name = constants.BLESSED_FILE_NAME if decision.blessed else constants.NOT_BLESSED_FILE_NAME
    io_utils.write_string_file(os.path.join(blessing.uri, name), decision.message + "\n")
    io_utils.write_string_file(os.path.join(blessing.uri, GATE_FILE), json.dumps(decision.to_dict(), indent=2))
    blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_BLESSED_KEY,
                                     constants.BLESSED_VALUE if decision.blessed else constants.NOT_BLESSED_VALUE)


def _single_or_none(artifacts: List[types.Artifact] | None) -> types.Artifact | None:
    if not artifacts:
        return None
    if len(artifacts) > 1:
        raise ValueError(f"there can be only one baseline model, got {len(artifacts)}")
    return artifacts[0]


class ImageEvaluator(base_component.BaseComponent):
    """PSNR/SSIM evaluation + value/change gate; outputs `evaluation` and `blessing` like the Evaluator."""

    SPEC_CLASS = ImageEvaluatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, examples: types.BaseChannel, model: types.BaseChannel,
                 custom_config: Dict[str, Any], baseline_model: types.BaseChannel | None = None,
                 baseline_model_dir: str = "", example_split: str = "eval"):
        if "config" not in custom_config:
            raise ValueError("custom_config must hold the run configuration: {'config': cfg.to_json()}")
        spec = ImageEvaluatorSpec(
            examples=examples, model=model, baseline_model=baseline_model,
            custom_config=json.dumps(custom_config), baseline_model_dir=baseline_model_dir,
            example_split=example_split,
            evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
            blessing=types.Channel(type=standard_artifacts.ModelBlessing))
        super().__init__(spec=spec)

