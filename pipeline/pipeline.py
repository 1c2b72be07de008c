"""The pipeline definition: `create_pipeline(cfg)`, the same graph for local runs and Kubeflow.

    ImageExampleGen -> StatisticsGen -> SchemaGen (ImportSchemaGen when a schema is checked in)
        -> ExampleValidator
        -> Transform (models.preprocessing.preprocessing_fn: decode -> crop -> degrade)
        -> Trainer (models.trainer.run_fn: pixel warm-up, then the GAN phase)
        -> ImageEvaluator (PSNR/SSIM gate; baseline: the latest blessed model) -> Pusher (atomic)

Every setting comes from the one `Config`; components that run our code get it as
`custom_config={"config": cfg.to_json(), ...}`. See docs/pipeline.md.
"""
from __future__ import annotations

import glob
import hashlib
import os
from collections import OrderedDict
from typing import Dict, Iterable

from config import REPO_ROOT, Config

PREPROCESSING_FN = "models.preprocessing.preprocessing_fn"
RUN_FN = "models.trainer.run_fn"
RESOLVER_ID = "latest_blessed_model_resolver"
# Where a checked-in schema for a data layout would live (pipeline/schema_<layout>.pbtxt). When there
# is one, ImportSchemaGen replaces SchemaGen: the schema is reviewed, not re-inferred every run.
SCHEMA_DIR = os.path.join(REPO_ROOT, "pipeline")
# Baseline for the Evaluator: "resolver" (a Resolver node, local runs) or "serving_dir" (the newest
# version under cfg.serving_dir; for open-source KFP, which cannot run Resolver nodes).
BASELINES = ("resolver", "serving_dir")


def create_pipeline(cfg: Config, components: Iterable | Dict | None = None, baseline: str = "resolver",
                    local_metadata: bool = True):
    """The TFX pipeline for `cfg`: name, root, sqlite metadata, Beam args and caching from the config.

    `components`: the nodes to run (a list, or the dict of `create_components`), e.g. a prefix of it;
    default all of them. `local_metadata=False` (Kubeflow, whose backend keeps the metadata): no
    sqlite config, which would create its directory under an object-storage root at compile time.
    """
    from tfx import v1 as tfx

    if components is None:
        components = create_components(cfg, baseline=baseline)
    if isinstance(components, dict):
        components = list(components.values())
    return tfx.dsl.Pipeline(
        pipeline_name=cfg.pipeline_name,
        pipeline_root=cfg.pipeline_root,
        components=list(components),
        enable_cache=cfg.enable_cache,
        metadata_connection_config=(tfx.orchestration.metadata.sqlite_metadata_connection_config(cfg.metadata_path)
                                    if local_metadata else None),
        beam_pipeline_args=list(cfg.beam_args),
    )


def create_components(cfg: Config, baseline: str = "resolver") -> OrderedDict[str, object]:
    """The pipeline's nodes in run order (every prefix is a runnable pipeline), keyed by short name."""
    from tfx import v1 as tfx

    from components.image_example_gen import ImageExampleGen

    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, got {baseline!r}")
    c: OrderedDict[str, object] = OrderedDict()
    c["example_gen"] = ImageExampleGen(config=cfg.view(*CONFIG_VIEWS["example_gen"]))
    c["statistics_gen"] = tfx.components.StatisticsGen(examples=c["example_gen"].outputs["examples"])
    schema_file = checked_in_schema(cfg)
    if schema_file:
        c["schema_gen"] = tfx.components.ImportSchemaGen(schema_file=schema_file)
    else:
        c["schema_gen"] = tfx.components.SchemaGen(statistics=c["statistics_gen"].outputs["statistics"],
                                                   infer_feature_shape=True)
    schema = c["schema_gen"].outputs["schema"]
    c["example_validator"] = tfx.components.ExampleValidator(
        statistics=c["statistics_gen"].outputs["statistics"], schema=schema)
    c["transform"] = transform_component(cfg, c["example_gen"].outputs["examples"], schema)
    c["trainer"] = tfx.components.Trainer(
        run_fn=RUN_FN,
        examples=c["transform"].outputs["transformed_examples"],
        transform_graph=c["transform"].outputs["transform_graph"],
        schema=schema,
        train_args=tfx.proto.TrainArgs(num_steps=train_steps(cfg)),
        eval_args=tfx.proto.EvalArgs(num_steps=eval_steps(cfg)),
        custom_config=custom_config(cfg, "trainer"))
    c.update(evaluation_components(cfg, c["transform"], c["trainer"], baseline))
    return c


def transform_component(cfg: Config, examples, schema):
    """The Transform node (also used by benchmarks/datapath.py, so it measures this exact step).

    Its own statistics are off: the pre-transform ones repeat StatisticsGen's, and the post-transform
    ones would describe PNG bytes (byte lengths, top-k of encoded images): two TFDV passes over the
    data that tell nothing.
    """
    from tfx import v1 as tfx

    return tfx.components.Transform(examples=examples, schema=schema, preprocessing_fn=PREPROCESSING_FN,
                                    custom_config=custom_config(cfg, "transform"), disable_statistics=True)


def evaluation_components(cfg: Config, transform, trainer, baseline: str) -> OrderedDict[str, object]:
    """The gate and the push: [Resolver (latest blessed model)], ImageEvaluator, Pusher (atomic)."""
    from tfx import v1 as tfx

    from components.atomic_pusher import make_pusher
    from components.image_evaluator import ImageEvaluator

    c: OrderedDict[str, object] = OrderedDict()
    if baseline == "resolver":
        c["resolver"] = tfx.dsl.Resolver(
            strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
            model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
            model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
        ).with_id(RESOLVER_ID)
        baseline_kwargs = {"baseline_model": c["resolver"].outputs["model"]}
    else:
        baseline_kwargs = {"baseline_model_dir": cfg.serving_dir}
    c["evaluator"] = ImageEvaluator(
        examples=transform.outputs["transformed_examples"], model=trainer.outputs["model"],
        custom_config=custom_config(cfg, "evaluator"), **baseline_kwargs)
    c["pusher"] = make_pusher(cfg, trainer.outputs["model"], c["evaluator"].outputs["blessing"])
    return c


# What each component reads of the config (Config.view) and which of our modules its result depends
# on. TFX's cache key covers exec properties, so a component re-runs only when its own settings or
# code change: a new eval threshold re-runs the Evaluator, not ingestion, Transform and training.
CONFIG_VIEWS = {
    "example_gen": ("data",),
    "transform": ("data", "model.scale"),
    "trainer": ("data", "model", "loss", "train", "export", "eval.max_images", "eval.report_images"),
    "evaluator": ("data", "model.scale", "eval"),
}
CODE = {
    "transform": ("models/preprocessing.py", "models/degrade.py", "models/images.py", "contracts/features.py"),
    "trainer": ("models/**/*.py", "contracts/*.py"),
    "evaluator": ("models/scoring.py", "models/gate.py", "models/restorer.py", "models/eval_pairs.py",
                  "models/metrics.py", "models/report.py", "models/degrade.py", "models/images.py", "contracts/*.py"),
}


def custom_config(cfg: Config, component: str) -> dict:
    """What a component running our code gets: its view of the config, and a fingerprint of that code.

    Transform and Trainer name their functions by module path, which TFX's cache key does not cover;
    the fingerprint makes an edit of that code invalidate their cached executions.
    """
    view = cfg.view(*CONFIG_VIEWS[component])
    return {"config": view.to_json(), "code_fingerprint": code_fingerprint(CODE[component])}


def code_fingerprint(patterns=("models/**/*.py",)) -> str:
    h = hashlib.sha256()
    paths = sorted({p for pat in patterns for p in glob.glob(os.path.join(REPO_ROOT, pat), recursive=True)})
    for path in paths:
        h.update(os.path.relpath(path, REPO_ROOT).encode())
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


def checked_in_schema(cfg: Config) -> str | None:
    path = os.path.join(SCHEMA_DIR, f"schema_{cfg.data.layout}.pbtxt")
    return path if os.path.isfile(path) else None


def train_steps(cfg: Config) -> int:
    """Generator steps of the whole run: the pixel-loss warm-up plus the adversarial phase."""
    return cfg.train.warmup_steps + cfg.train.gan_steps


def eval_steps(cfg: Config) -> int:
    """Batches that cover `eval.max_images` (the Trainer's validation; the gate is the Evaluator's)."""
    return max(1, -(-cfg.eval.max_images // cfg.train.batch_size))
