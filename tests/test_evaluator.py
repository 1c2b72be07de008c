"""The evaluation gate, the report and the atomic Pusher, on real images and real SavedModels.

Models are exported with models/export.py (the Trainer's contract) from tiny fixed upsamplers:
`bicubic` (MATLAB bicubic in the graph: the baseline itself), `nearest` (pixel repetition: about
1-2 dB worse), `inverted` (1 - bicubic: a broken model). Eval pairs are crops of committed sample
photographs with their LR made by models/degrade.py, as Transform makes them.
"""
from __future__ import annotations

import glob
import json
import os

import numpy as np
import pytest
import sample_images

from config import SAMPLE_DATA, preset
from models import eval_pairs, images, report
from models.gate import gate
from models.scoring import EvalImage, evaluate

CROP = 64  # HR crop; LR is CROP / 4


def _cfg(**overrides):
    base = {"eval.report_images": 3, "eval.max_images": 8}
    base.update(overrides)
    return preset("tiny", task="sr", overrides=base)


# -- fixtures: eval pairs and exported models ----------------------------------------------------------

@pytest.fixture(scope="module")
def sr_pairs():
    from models import degrade

    pairs = []
    for path in sorted(glob.glob(os.path.join(SAMPLE_DATA, "*.png")))[2::13]:  # five photographs
        hr = images.read_rgb8(path)
        y, x = (hr.shape[0] - CROP) // 8 * 4, (hr.shape[1] - CROP) // 8 * 4  # central, 4-aligned
        target = np.ascontiguousarray(hr[y:y + CROP, x:x + CROP])
        pairs.append(EvalImage(os.path.basename(path)[:-4], degrade.resize_uint8(target, 0.25), target))
    return pairs


def _upsampler(kind: str, scale: int):
    import tf_keras as keras

    from models import degrade

    inp = keras.Input((None, None, 3))
    if kind == "nearest":
        out = keras.layers.UpSampling2D(scale, interpolation="nearest")(inp)
    elif kind == "identity":
        out = keras.layers.Lambda(lambda x: x)(inp)
    else:
        up = keras.layers.Lambda(lambda x: degrade.imresize(x, float(scale), True))(inp)
        out = keras.layers.Lambda(lambda x: 1.0 - x)(up) if kind == "inverted" else up
    return keras.Model(inp, out)


def export_model(kind: str, cfg, export_dir: str) -> str:
    from models import export

    export.export_generator(_upsampler(kind, cfg.scale), export_dir, cfg, size_multiple=1)
    return export_dir


@pytest.fixture(scope="module")
def sr_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("sr_models")
    cfg = _cfg()
    return {k: export_model(k, cfg, str(root / k)) for k in ("bicubic", "nearest", "inverted")}


# -- evaluation and gate ---------------------------------------------------------------------------

def test_first_model_blessed_on_bounds_and_report_written(sr_pairs, sr_models, tmp_path):
    cfg = _cfg(**{"eval.min_psnr": 20.0, "eval.min_ssim": 0.5})
    result = evaluate(cfg, sr_pairs, sr_models["bicubic"])
    decision = gate(cfg.eval, result)
    assert decision.blessed and decision.rubber_stamped, decision.message
    means = result.means
    # The bicubic "model" is the baseline computed in the graph: same numbers up to float rounding.
    assert abs(means["model"]["psnr_y"] - means["baseline"]["psnr_y"]) < 0.05
    assert 20.0 < means["model"]["psnr_y"] < 40.0 and 0.5 < means["model"]["ssim_y"] < 1.0
    # Y-channel figures are the protocol's; RGB are reported beside them and differ.
    assert means["model"]["psnr_rgb"] != means["model"]["psnr_y"]
    assert "regression checks skipped" in decision.message

    paths = report.write_report(result, decision, str(tmp_path))
    assert sorted(paths) == sorted(report.FILES)
    grid = images.read_rgb8(paths["grid.png"])
    rows, cols = cfg.eval.report_images, 4
    assert grid.shape == (rows * CROP + (rows - 1) * report.GRID_GAP, cols * CROP + (cols - 1) * report.GRID_GAP, 3)
    # Row 0: the ground-truth cell holds the first target exactly.
    x0 = 3 * (CROP + report.GRID_GAP)
    np.testing.assert_array_equal(grid[:CROP, x0:x0 + CROP], sr_pairs[0].target)
    page = open(paths["report.html"]).read()
    assert "grid.png" in page and sr_pairs[0].id in page and "bicubic" in page
    md = open(paths["report.md"]).read()
    assert "| mean |" in md and "PSNR-Y (dB) model" in md
    data = json.load(open(paths["metrics.json"]))
    assert data["num_images"] == len(sr_pairs) and data["gate"]["blessed"] is True
    assert len(open(paths["metrics.csv"]).read().strip().splitlines()) == 1 + 2 * len(sr_pairs)


def test_not_blessed_below_absolute_bound_says_why(sr_pairs, sr_models):
    cfg = _cfg(**{"eval.min_psnr": 20.0, "eval.min_ssim": 0.5})
    result = evaluate(cfg, sr_pairs, sr_models["inverted"])
    decision = gate(cfg.eval, result)
    assert not decision.blessed
    failed = {c.name for c in decision.failures}
    assert failed == {"min_psnr", "min_ssim"}
    psnr = result.means["model"]["psnr_y"]
    assert f"PSNR-Y {psnr:.2f} dB < min_psnr 20.00 dB" in decision.message


def test_not_blessed_on_regression_against_blessed_model(sr_pairs, sr_models, tmp_path):
    cfg = _cfg()
    result = evaluate(cfg, sr_pairs, sr_models["nearest"], blessed_model_dir=sr_models["bicubic"])
    decision = gate(cfg.eval, result)
    assert not decision.blessed and not decision.rubber_stamped
    assert "max_psnr_drop" in {c.name for c in decision.failures}
    m, b = result.means["model"]["psnr_y"], result.means["blessed"]["psnr_y"]
    assert b - m > cfg.eval.max_psnr_drop
    assert f"drop {b - m:.2f} dB > max_psnr_drop {cfg.eval.max_psnr_drop:.2f} dB" in decision.message
    # The report then has the blessed model as a fifth grid column and in the tables.
    paths = report.write_report(result, decision, str(tmp_path))
    assert images.read_rgb8(paths["grid.png"]).shape[1] == 5 * CROP + 4 * report.GRID_GAP
    assert "blessed model" in open(paths["report.md"]).read()

    # The same model against itself is no regression.
    same = gate(cfg.eval, evaluate(cfg, sr_pairs[:2], sr_models["nearest"],
                                                         blessed_model_dir=sr_models["nearest"]))
    assert same.blessed, same.message


def test_min_gain_over_baseline(sr_pairs, sr_models):
    cfg = _cfg(**{"eval.min_gain_over_baseline": 0.5})
    decision = gate(cfg.eval, evaluate(cfg, sr_pairs[:2], sr_models["bicubic"]))
    assert not decision.blessed
    assert [c.name for c in decision.failures] == ["min_gain_over_baseline"]
    assert "gain over bicubic" in decision.message


def test_deblur_baseline_is_the_blurred_input(sr_pairs, tmp_path):
    cfg = preset("tiny", task="deblur")
    # Sharp crops blurred by synthetic camera-shake kernels.
    pairs = [EvalImage(p.id, sample_images.blurred(p.target, seed=i), p.target) for i, p in enumerate(sr_pairs)]
    model = export_model("identity", cfg, str(tmp_path / "identity"))
    result = evaluate(cfg, pairs, model)
    assert result.baseline_name == "blurred input"
    assert result.per_image["model"] == result.per_image["baseline"]
    assert result.means["model"]["psnr_y"] < 40  # a blurred pair, not identical images


def example(**feats):
    import tensorflow as tf

    return tf.train.Example(features=tf.train.Features(feature={
        k: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v])) for k, v in feats.items()}))


def write_records(path: str, records) -> None:
    import tensorflow as tf

    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path, options="GZIP") as w:
        for r in records:
            w.write(r.SerializeToString())


def test_bad_eval_records_are_skipped_and_listed(sr_pairs, tmp_path):
    good = sr_pairs[0]
    hr, lr = images.encode_png(good.target), images.encode_png(good.degraded)
    records = [
        example(id=b"good", target=hr, degraded=lr),
        example(id=b"corrupt", target=b"\x89PNG not really", degraded=lr),
        example(id=b"no_degraded", target=hr),
        example(id=b"wrong_size", target=images.encode_png(good.target[:40]), degraded=lr),
    ]
    write_records(str(tmp_path / "data.gz"), records)
    pairs, rejects = eval_pairs.read_eval_images(str(tmp_path), scale=4, max_images=10)
    assert [p.id for p in pairs] == ["good"]
    np.testing.assert_array_equal(pairs[0].target, good.target)
    reasons = [r for _, r in rejects]
    assert len(reasons) == 3
    assert "undecodable" in reasons[0] and "missing feature" in reasons[1] and "is not 4x" in reasons[2]


def test_no_usable_images_is_not_blessed(sr_models):
    cfg = _cfg()
    result = evaluate(cfg, [], sr_models["bicubic"], rejects=[("x#0", "undecodable")])
    decision = gate(cfg.eval, result)
    assert not decision.blessed and "no usable eval images (1 rejected)" in decision.message


# -- the component's executor and the atomic Pusher ------------------------------------------------------

@pytest.fixture(scope="module")
def eval_examples_dir(sr_pairs, tmp_path_factory):
    """A Transform-shaped examples artifact directory: Split-eval/*.gz with id, target, degraded."""
    root = tmp_path_factory.mktemp("examples")
    write_records(str(root / "Split-eval" / "transformed_examples-00000-of-00001.gz"),
                  [example(id=p.id.encode(), target=images.encode_png(p.target),
                           degraded=images.encode_png(p.degraded)) for p in sr_pairs])
    return str(root)


def _artifact(cls, uri: str, artifact_id: int = 0):
    a = cls()
    a.uri = uri
    if artifact_id:
        a.id = artifact_id
    return a


def _model_artifact(saved_model: str, uri: str, artifact_id: int):
    """A Model artifact laid out as the Trainer writes it: <uri>/Format-Serving/saved_model.pb."""
    import shutil

    from tfx.types import standard_artifacts

    shutil.copytree(saved_model, os.path.join(uri, "Format-Serving"))
    return _artifact(standard_artifacts.Model, uri, artifact_id)


def run_evaluator(cfg, examples_dir, model, out_dir, baseline=None, baseline_dir=""):
    from tfx.types import standard_artifacts

    from components import image_evaluator as ie

    examples = _artifact(standard_artifacts.Examples, examples_dir)
    examples.split_names = '["eval"]'
    evaluation_out = _artifact(standard_artifacts.ModelEvaluation, os.path.join(out_dir, "evaluation"))
    blessing = _artifact(standard_artifacts.ModelBlessing, os.path.join(out_dir, "blessing"))
    ie.Executor().Do(
        {ie.EXAMPLES_KEY: [examples], ie.MODEL_KEY: [model], ie.BASELINE_MODEL_KEY: [baseline] if baseline else []},
        {ie.EVALUATION_KEY: [evaluation_out], ie.BLESSING_KEY: [blessing]},
        {ie.CUSTOM_CONFIG_KEY: json.dumps({"config": cfg.to_json()}), ie.BASELINE_MODEL_DIR_KEY: baseline_dir})
    return blessing, evaluation_out


def run_pusher(executor_cls, model, blessing, base_dir, out_dir):
    from tfx.proto import pusher_pb2
    from tfx.types import standard_artifacts
    from tfx.utils import proto_utils

    pushed = _artifact(standard_artifacts.PushedModel, out_dir)
    dest = pusher_pb2.PushDestination(filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=base_dir))
    executor_cls().Do({"model": [model], "model_blessing": [blessing]}, {"pushed_model": [pushed]},
                      {"push_destination": proto_utils.proto_to_json(dest)})
    return pushed


def test_executor_blesses_first_model_pusher_publishes_then_regression_is_refused(
        sr_models, eval_examples_dir, tmp_path):
    """Kubeflow's route: the baseline is the newest version in the serving directory."""
    from components.atomic_pusher import AtomicPusherExecutor

    cfg = _cfg(**{"eval.min_psnr": 20.0})
    serving = str(tmp_path / "serving" / "srgan")
    good = _model_artifact(sr_models["bicubic"], str(tmp_path / "model1"), 1)

    blessing, evaluation_out = run_evaluator(cfg, eval_examples_dir, good, str(tmp_path / "eval1"),
                                             baseline_dir=serving)
    assert blessing.get_int_custom_property("blessed") == 1
    assert blessing.get_string_custom_property("current_model") == good.uri
    assert blessing.get_int_custom_property("current_model_id") == 1
    assert os.path.exists(os.path.join(blessing.uri, "BLESSED"))
    assert blessing.get_string_custom_property("blessing_message").startswith("BLESSED")
    for name in report.FILES:
        assert os.path.exists(os.path.join(evaluation_out.uri, name)), name

    pushed = run_pusher(AtomicPusherExecutor, good, blessing, serving, str(tmp_path / "pushed1"))
    assert pushed.get_int_custom_property("pushed") == 1
    version = pushed.get_string_custom_property("pushed_version")
    assert os.listdir(serving) == [version]  # no temporary directory left beside it
    assert pushed.get_string_custom_property("pushed_destination") == os.path.join(serving, version)
    assert os.path.exists(os.path.join(serving, version, "saved_model.pb"))
    assert os.path.isdir(os.path.join(serving, version, "variables"))

    worse = _model_artifact(sr_models["nearest"], str(tmp_path / "model2"), 2)
    blessing2, _ = run_evaluator(cfg, eval_examples_dir, worse, str(tmp_path / "eval2"), baseline_dir=serving)
    assert blessing2.get_int_custom_property("blessed") == 0
    assert blessing2.get_string_custom_property("baseline_model") == os.path.join(serving, version)
    reason = open(os.path.join(blessing2.uri, "NOT_BLESSED")).read()
    assert reason.startswith("NOT BLESSED") and "max_psnr_drop" in reason and "vs blessed model" in reason
    gate_checks = json.load(open(os.path.join(blessing2.uri, "gate.json")))["checks"]
    assert {c["name"] for c in gate_checks if not c["passed"]} >= {"max_psnr_drop"}

    pushed2 = run_pusher(AtomicPusherExecutor, worse, blessing2, serving, str(tmp_path / "pushed2"))
    assert pushed2.get_int_custom_property("pushed") == 0
    assert os.listdir(serving) == [version]


def test_failed_push_leaves_no_version_unlike_stock_pusher(sr_models, tmp_path):
    """A copy that fails half-way (an unreadable file in the model) must not leave a version that
    TF Serving would try to load; the stock Pusher copies in place and leaves one."""
    from tfx.components.pusher import executor as stock
    from tfx.types import standard_artifacts

    from components.atomic_pusher import AtomicPusherExecutor

    model = _model_artifact(sr_models["bicubic"], str(tmp_path / "model"), 1)
    os.symlink(str(tmp_path / "gone"), os.path.join(model.uri, "Format-Serving", "variables", "zz_broken"))
    blessing = _artifact(standard_artifacts.ModelBlessing, str(tmp_path / "blessing"))
    blessing.set_int_custom_property("blessed", 1)

    ours, theirs = str(tmp_path / "ours"), str(tmp_path / "stock")
    with pytest.raises(Exception):  # noqa: B017 - the filesystem layer's own not-found error
        run_pusher(AtomicPusherExecutor, model, blessing, ours, str(tmp_path / "p1"))
    assert os.listdir(ours) == []
    with pytest.raises(Exception):  # noqa: B017
        run_pusher(stock.Executor, model, blessing, theirs, str(tmp_path / "p2"))
    [partial] = os.listdir(theirs)
    assert partial.isdigit() and os.path.isdir(os.path.join(theirs, partial, "variables"))


# -- the component in a pipeline (BeamDagRunner) -----------------------------------------------------------

def _pipeline_run(cfg, examples_dir: str, model_root: str):
    """Importer(examples, model) -> Resolver(latest blessed) -> ImageEvaluator -> atomic Pusher, as
    pipeline/pipeline.py wires them (Transform/Trainer outputs replaced by imported artifacts)."""
    import tfx
    from tfx.dsl.components.common.importer import Importer
    from tfx.dsl.components.common.resolver import Resolver
    from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import LatestBlessedModelStrategy
    from tfx.orchestration import metadata, pipeline
    from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner
    from tfx.types import Channel, standard_artifacts

    from components.atomic_pusher import make_pusher
    from components.image_evaluator import ImageEvaluator

    examples = Importer(source_uri=examples_dir, artifact_type=standard_artifacts.Examples,
                        properties={"split_names": '["train", "eval"]'}).with_id("examples")
    model = Importer(source_uri=model_root, artifact_type=standard_artifacts.Model,
                     custom_properties={"tfx_version": tfx.__version__}).with_id("model")
    resolver = Resolver(strategy_class=LatestBlessedModelStrategy,
                        model=Channel(type=standard_artifacts.Model),
                        model_blessing=Channel(type=standard_artifacts.ModelBlessing)
                        ).with_id("latest_blessed_model_resolver")
    evaluator = ImageEvaluator(examples=examples.outputs["result"], model=model.outputs["result"],
                               baseline_model=resolver.outputs["model"], custom_config={"config": cfg.to_json()})
    pusher = make_pusher(cfg, model.outputs["result"], evaluator.outputs["blessing"])
    p = pipeline.Pipeline(
        pipeline_name=cfg.pipeline_name, pipeline_root=cfg.pipeline_root,
        components=[examples, model, resolver, evaluator, pusher], enable_cache=False,
        metadata_connection_config=metadata.sqlite_metadata_connection_config(cfg.metadata_path),
        beam_pipeline_args=["--direct_num_workers=1"])
    BeamDagRunner().run(p)


def _latest(store, type_name):
    return max(store.get_artifacts_by_type(type_name), key=lambda a: a.id)


@pytest.mark.slow
def test_pipeline_pushes_blessed_model_and_refuses_regression(transformed_sr, sr_models, tmp_path):
    """Two runs of a small pipeline on real Transform output: the first model is blessed and pushed;
    the second (worse) is compared with it through the Resolver, refused with the reason, not pushed."""
    import shutil

    from ml_metadata.metadata_store import metadata_store
    from tfx.orchestration import metadata

    cfg = transformed_sr.cfg.override({"run_root": str(tmp_path / "runs"), "eval.min_psnr": 15.0,
                                       "serving.serving_base": str(tmp_path / "serving")})
    examples_dir = os.path.dirname(transformed_sr.eval_split_dir)
    for name in ("bicubic", "nearest"):
        shutil.copytree(sr_models[name], tmp_path / name / "Format-Serving")

    _pipeline_run(cfg, examples_dir, str(tmp_path / "bicubic"))
    versions = os.listdir(cfg.serving_dir)
    assert len(versions) == 1 and os.path.exists(os.path.join(cfg.serving_dir, versions[0], "saved_model.pb"))

    _pipeline_run(cfg, examples_dir, str(tmp_path / "nearest"))
    assert os.listdir(cfg.serving_dir) == versions  # nothing new pushed

    store = metadata_store.MetadataStore(metadata.sqlite_metadata_connection_config(cfg.metadata_path))
    blessing = _latest(store, "ModelBlessing")
    props = blessing.custom_properties
    assert props["blessed"].int_value == 0
    first_model = min(store.get_artifacts_by_type("Model"), key=lambda a: a.id)
    assert props["baseline_model_id"].int_value == first_model.id  # resolved by LatestBlessedModelStrategy
    reason = open(os.path.join(blessing.uri, "NOT_BLESSED")).read()
    assert "max_psnr_drop" in reason and props["blessing_message"].string_value.strip() == reason.strip()
    assert _latest(store, "PushedModel").custom_properties["pushed"].int_value == 0
    report_page = os.path.join(_latest(store, "ModelEvaluation").uri, "report.html")
    assert "blessed model" in open(report_page).read()
