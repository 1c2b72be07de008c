"""DataFingerprint: the fingerprint of every file below the data root, as a value the next task reads.

Open-source Kubeflow Pipelines never runs TFX's ExampleGen driver (only Vertex reads `preCacheCheck`), and
its cache key of a task is the task's input artifact ids, parameter values, container and outputs: with
no input of its own, ImageExampleGen would be taken from the cache on every scheduled run and never see
new images. So on Kubeflow this component runs first, uncached, lists the data root (names, sizes and
modification times: `image_listing.tree_fingerprint`, the same the local driver computes) and hands the
fingerprint to ImageExampleGen as a parameter (`data_fingerprint`). Unchanged data, same parameter: the
ingestion and everything after it come from the cache (no training, nothing pushed); changed data: a new
key, so ingestion, Transform, training, the gate and the push run. docs/kubeflow.md.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List

from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

DATA_ROOT_KEY = "data_root"
FINGERPRINT_KEY = "fingerprint"

log = logging.getLogger(__name__)


class DataFingerprintSpec(ComponentSpec):
    PARAMETERS = {DATA_ROOT_KEY: ExecutionParameter(type=str)}
    INPUTS: Dict[str, ChannelParameter] = {}
    OUTPUTS = {FINGERPRINT_KEY: ChannelParameter(type=standard_artifacts.String)}


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        from components.image_listing import tree_fingerprint

        root = exec_properties[DATA_ROOT_KEY]
        fingerprint = tree_fingerprint(root)
        artifact_utils.get_single_instance(output_dict[FINGERPRINT_KEY]).value = fingerprint
        log.info("data fingerprint of %s: %s", root, fingerprint)


class DataFingerprint(base_component.BaseComponent):
    """Fingerprint of the data root (output `fingerprint`, a String value); see the module docstring."""

    SPEC_CLASS = DataFingerprintSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, data_root: str):
        super().__init__(spec=DataFingerprintSpec(
            data_root=data_root, fingerprint=types.Channel(type=standard_artifacts.String)))

    def future_value(self):
        """The fingerprint as a placeholder, for another component's execution property."""
        return self.outputs[FINGERPRINT_KEY].future()[0].value
