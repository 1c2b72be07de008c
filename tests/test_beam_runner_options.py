"""The Dataflow / Flink / Spark Beam arguments docs/kubeflow.md shows, read from the doc itself, go
through `--set kubeflow.beam_args=...` into the cluster config and build Beam's own PipelineOptions for
their runner; what Beam validates without a cluster or a cloud account is validated."""
import os
import re

import pytest

from config import REPO_ROOT, preset
from pipeline import kubeflow_runner


def documented_beam_args():
    """{runner name: the comma-separated --set value} from docs/kubeflow.md's list of Beam runners."""
    text = open(os.path.join(REPO_ROOT, "docs", "kubeflow.md")).read()
    found = dict(re.findall(r"^- (Dataflow|Flink|Spark): `(--runner=[^`]+)`", text, re.M))
    assert set(found) == {"Dataflow", "Flink", "Spark"}, found
    return found


def _options(value):
    from apache_beam.options.pipeline_options import PipelineOptions

    cfg = preset("tiny").override({"kubeflow.beam_args": value})  # the way `--set` hands it over
    args = list(kubeflow_runner.cluster_config(cfg).beam_args)
    assert args == value.split(",")
    return PipelineOptions(args)


def test_dataflow_arguments_build_valid_google_cloud_options():
    from apache_beam.options.pipeline_options import GoogleCloudOptions, StandardOptions, WorkerOptions
    from apache_beam.options.pipeline_options_validator import PipelineOptionsValidator
    from apache_beam.runners.dataflow.dataflow_runner import DataflowRunner

    options = _options(documented_beam_args()["Dataflow"])
    cloud = options.view_as(GoogleCloudOptions)
    assert options.view_as(StandardOptions).runner == "DataflowRunner"
    assert cloud.project and cloud.region and cloud.temp_location.startswith("gs://")
    assert options.view_as(WorkerOptions).sdk_container_image  # the workers run the pipeline's image
    validator = PipelineOptionsValidator(options, DataflowRunner())
    assert validator.is_service_runner()
    # Beam's own checks of the project id, region and GCS paths; the full validate() also asks GCS
    # about the bucket's soft-delete policy, which needs the network and an account.
    assert validator.validate_gcs_path(cloud, "temp_location") == []
    assert validator.validate_cloud_options(cloud) == []
    bad = PipelineOptionsValidator(_options("--runner=DataflowRunner,--project=My Project,--temp_location=/tmp"),
                                   DataflowRunner())
    assert bad.validate_gcs_path(bad.options.view_as(GoogleCloudOptions), "temp_location")  # and it can fail


@pytest.mark.parametrize("runner", ["Flink", "Spark"])
def test_portable_runner_arguments_build_valid_portable_options(runner):
    from apache_beam.options.pipeline_options import PortableOptions, StandardOptions
    from apache_beam.options.pipeline_options_validator import PipelineOptionsValidator
    from apache_beam.runners.portability.portable_runner import PortableRunner

    options = _options(documented_beam_args()[runner])
    portable = options.view_as(PortableOptions)
    assert options.view_as(StandardOptions).runner == "PortableRunner"
    assert re.fullmatch(r"[\w.-]+:\d+", portable.job_endpoint)
    assert (portable.environment_type, portable.environment_config) == ("EXTERNAL", "localhost:50000")
    assert PipelineOptionsValidator(options, PortableRunner()).validate() == []
    assert "--direct_num_workers=0" not in documented_beam_args()[runner]  # the cluster runs the workers
