"""The pipeline's wiring, and its data half run for real: ImageExampleGen -> StatisticsGen ->
SchemaGen -> ExampleValidator -> Transform with TFX's BeamDagRunner on the embedded samples, both
tasks (tiny preset), then the Transform artifact's gzipped TFRecords decoded back to image pairs.
"""
import ast
import glob
import os

import numpy as np
import pytest

from config import SAMPLE_DATA, preset
from pipeline import local_runner
from pipeline import pipeline as pipeline_def

# Tests run Beam in-process: multi-processing workers cost seconds each on a 2-core machine; that
# the workers import our packages is checked once, by test_beam_workers_import_our_packages.
IN_PROCESS_BEAM = ("--direct_running_mode=in_memory", "--direct_num_workers=1")
DATA_STEPS = ["example_gen", "statistics_gen", "schema_gen", "example_validator", "transform"]


def _cfg(task, tmp_path, **overrides):
    return preset("tiny", task=task, overrides={"run_root": str(tmp_path / "runs"), **overrides})


# -- wiring (no execution) ---------------------------------------------------------------------------

@pytest.mark.parametrize("task", ["sr", "deblur"])
def test_components_in_run_order_with_config(task, tmp_path):
    import json

    from config import Config

    cfg = _cfg(task, tmp_path)
    comps = pipeline_def.create_components(cfg)
    assert list(comps) == DATA_STEPS + ["resolver", "trainer", "evaluator", "pusher"]
    ids = [c.id for c in comps.values()]
    assert ids == ["ImageExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform",
                   pipeline_def.RESOLVER_ID, "Trainer", "ImageEvaluator", "Pusher"]

    transform, trainer = comps["transform"], comps["trainer"]
    assert transform.exec_properties["preprocessing_fn"] == "models.preprocessing.preprocessing_fn"
    assert trainer.exec_properties["run_fn"] == "models.trainer.run_fn"
    for node, name in ((transform, "transform"), (trainer, "trainer")):
        custom = json.loads(node.exec_properties["custom_config"])
        assert Config.from_json(custom["config"]) == cfg.view(*pipeline_def.CONFIG_VIEWS[name])
    train_args = trainer.exec_properties["train_args"]
    assert str(cfg.train.warmup_steps + cfg.train.gan_steps) in str(train_args)
    # Trainer reads what Transform wrote; the Evaluator compares with the latest blessed model.
    assert trainer.inputs["examples"].producer_component_id == "Transform"
    assert trainer.inputs["transform_graph"].producer_component_id == "Transform"
    evaluator = comps["evaluator"]
    assert evaluator.inputs["baseline_model"].producer_component_id == pipeline_def.RESOLVER_ID
    assert "base_model" not in trainer.inputs  # warm start is off by default
    warm = pipeline_def.create_components(cfg.override({"train.warm_start": True}))["trainer"]
    assert warm.inputs["base_model"].producer_component_id == pipeline_def.RESOLVER_ID
    assert comps["pusher"].inputs["model_blessing"].producer_component_id == "ImageEvaluator"

    p = pipeline_def.create_pipeline(cfg, comps)
    assert p.pipeline_info.pipeline_name == cfg.pipeline_name
    assert p.pipeline_info.pipeline_root == cfg.pipeline_root
    assert p.beam_pipeline_args == list(cfg.beam_args)
    assert p.enable_cache == cfg.enable_cache
    assert p.metadata_connection_config.sqlite.filename_uri == cfg.metadata_path


def test_the_kubeflow_graph_has_no_resolver_and_fingerprints_the_data_first(tmp_path):
    import json

    from models.trainer import WARM_START_FROM

    cfg = _cfg("sr", tmp_path).override({"train.warm_start": True})
    comps = pipeline_def.create_components(cfg, target="kubeflow")
    assert list(comps)[:2] == ["data_fingerprint", "example_gen"] and "resolver" not in comps
    assert comps["data_fingerprint"].exec_properties["data_root"] == cfg.data.root
    from tfx.dsl.placeholder import placeholder

    fingerprint = comps["example_gen"].exec_properties["data_fingerprint"]  # the task's output, at run time
    assert isinstance(fingerprint, placeholder.Placeholder) and "DataFingerprint" in str(fingerprint.encode())
    assert comps["evaluator"].exec_properties["baseline_model_dir"] == cfg.serving_dir
    trainer = comps["trainer"]
    assert "base_model" not in trainer.inputs
    assert json.loads(trainer.exec_properties["custom_config"])[WARM_START_FROM] == cfg.serving_dir
    with pytest.raises(ValueError, match="target"):
        pipeline_def.create_components(cfg, target="nope")


def test_code_edits_change_the_cache_key(tmp_path):
    """preprocessing_fn/run_fn are named by module path, which TFX's cache key does not cover."""
    before = pipeline_def.code_fingerprint(pipeline_def.CODE["transform"])
    assert pipeline_def.custom_config(_cfg("sr", tmp_path), "transform")["code_fingerprint"] == before
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "x.py").write_text("A = 1\n")
    first = pipeline_def.code_fingerprint((str(tmp_path / "models" / "*.py"),))
    (tmp_path / "models" / "x.py").write_text("A = 2\n")
    assert pipeline_def.code_fingerprint((str(tmp_path / "models" / "*.py"),)) != first


def test_components_get_only_the_settings_they_read(tmp_path):
    """A serving or eval change must not re-run ingestion, Transform or training (cache keys)."""
    from config import Config

    def configs(cfg):
        comps = pipeline_def.create_components(cfg)
        out = {name: comps[name].exec_properties["custom_config"] for name in ("transform", "trainer", "evaluator")}
        out["example_gen"] = comps["example_gen"].exec_properties["custom_config"]
        return out

    cfg = _cfg("sr", tmp_path)
    base = configs(cfg)
    evaluated = configs(cfg.override({"eval.min_psnr": 30.0, "serving.tile_overlap": 8}))
    assert evaluated["evaluator"] != base["evaluator"]
    for name in ("example_gen", "transform", "trainer"):
        assert evaluated[name] == base[name], name
    trained = configs(cfg.override({"train.lr_gen": 0.01}))
    assert trained["trainer"] != base["trainer"]
    assert (trained["transform"], trained["example_gen"]) == (base["transform"], base["example_gen"])
    # each view still carries what its component reads
    view = Config.from_json(pipeline_def.custom_config(cfg, "transform")["config"])
    assert (view.task, view.data, view.scale) == (cfg.task, cfg.data, cfg.scale)


def test_until_selects_a_prefix(tmp_path):
    comps = pipeline_def.create_components(_cfg("deblur", tmp_path))
    assert [c.id for c in local_runner.select_prefix(comps, "transform")][-1] == "Transform"
    assert len(local_runner.select_prefix(comps, "ExampleValidator")) == 4
    assert len(local_runner.select_prefix(comps, None)) == len(comps)
    with pytest.raises(ValueError, match="choose from .*transform \\(Transform\\)"):
        local_runner.select_prefix(comps, "Tranform")


# -- the data half, run by BeamDagRunner ---------------------------------------------------------------

def _records(pattern):
    import tensorflow as tf

    from models.train_data import record_dataset

    files = sorted(glob.glob(pattern))
    assert files, f"nothing matches {pattern}"
    return [tf.train.Example.FromString(r) for r in record_dataset(files).as_numpy_iterator()]


def _artifact_uri(cfg, type_name, producer_dir):
    """The newest artifact of `type_name` under <pipeline root>/<producer>, from ML Metadata."""
    from ml_metadata.metadata_store import metadata_store
    from tfx.orchestration import metadata

    store = metadata_store.MetadataStore(metadata.sqlite_metadata_connection_config(cfg.metadata_path))
    prefix = os.path.join(cfg.pipeline_root, producer_dir) + os.sep
    uris = [a.uri for a in sorted(store.get_artifacts_by_type(type_name), key=lambda a: a.id)
            if a.uri.startswith(prefix)]
    assert uris, f"no {type_name} artifact from {producer_dir} in {cfg.metadata_path}"
    return uris[-1]


def _decode(png):
    import tensorflow as tf

    return tf.io.decode_png(png, channels=3).numpy()


@pytest.mark.slow
@pytest.mark.parametrize("task", ["sr", "deblur"])
def test_data_half_of_the_pipeline_on_the_samples(task, tmp_path):
    if not glob.glob(os.path.join(SAMPLE_DATA, "*.png")):
        pytest.skip(f"no embedded sample images in {SAMPLE_DATA}")
    # SR runs with the dataset-mean analyzer (off by default), deblur without it.
    cfg = _cfg(task, tmp_path, beam_args=IN_PROCESS_BEAM, **{"data.dataset_mean": task == "sr"})
    local_runner.run_pipeline(cfg, until="transform")

    crop, small = cfg.data.crop_size, cfg.data.crop_size // cfg.scale
    examples = _artifact_uri(cfg, "Examples", "ImageExampleGen")
    transformed = _artifact_uri(cfg, "Examples", "Transform")
    assert os.path.isdir(os.path.join(_artifact_uri(cfg, "ExampleAnomalies", "ExampleValidator"), "Split-eval"))
    for split in ("train", "eval"):
        ingested = {e.features.feature["id"].bytes_list.value[0]
                    for e in _records(os.path.join(examples, f"Split-{split}", "*"))}
        out = _records(os.path.join(transformed, f"Split-{split}", "*.gz"))
        assert ingested and {e.features.feature["id"].bytes_list.value[0] for e in out} == ingested
        crop_means = []
        for e in out:
            f = e.features.feature
            target, degraded = _decode(f["target"].bytes_list.value[0]), _decode(f["degraded"].bytes_list.value[0])
            assert target.shape == (crop, crop, 3)
            assert degraded.shape == (small, small, 3)
            crop_means.append(target.reshape(-1, 3).mean(axis=0) / 255.0)
        if split == "train":
            train_mean = np.mean(crop_means, axis=0)
        if cfg.data.dataset_mean:
            # target_mean: one full pass over the *train* targets, the same value in every example.
            means = np.array([list(e.features.feature["target_mean"].float_list.value) for e in out])
            np.testing.assert_allclose(means, np.broadcast_to(train_mean, means.shape), atol=1e-5)

    import tensorflow_transform as tft

    graph = _artifact_uri(cfg, "TransformGraph", "Transform")
    assert set(tft.TFTransformOutput(graph).transformed_feature_spec()) == (
        {"id", "target", "degraded"} | ({"target_mean"} if cfg.data.dataset_mean else set()))


@pytest.mark.slow
def test_beam_workers_import_our_packages(tmp_path):
    """cfg.beam_args' multi-processing DirectRunner starts worker processes with this interpreter;
    they must import the project (installed editable) to run preprocessing_fn and the ingestion."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    parent_pid = os.getpid()
    repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # Defined as if in __main__ so that Beam's pickler ships it by value: by reference it would name
    # this test module, which a worker cannot import (another distribution owns a top-level `tests`).
    namespace = {"__name__": "__main__"}
    exec("def import_in_worker(name):\n"
         "    import importlib, os\n"
         "    return name, os.getpid(), importlib.import_module(name).__file__\n", namespace)

    options = PipelineOptions(["--direct_running_mode=multi_processing", "--direct_num_workers=1"])
    out = os.path.join(str(tmp_path), "found")
    with beam.Pipeline(options=options) as p:
        modules = p | beam.Create(["models.preprocessing", "components.image_example_gen"])
        _ = modules | beam.Map(namespace["import_in_worker"]) | beam.Map(repr) | beam.io.WriteToText(out)
    found = sorted(ast.literal_eval(line) for path in glob.glob(out + "*") for line in open(path))
    assert [name for name, _, _ in found] == ["components.image_example_gen", "models.preprocessing"]
    for name, pid, path in found:
        # A separate process, and the checkout's file (the editable install), not a stale copy.
        assert pid != parent_pid and path.startswith(repo_root), (name, pid, path)
