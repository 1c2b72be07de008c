"""The pipeline definition: `create_pipeline(cfg)`, the same graph for local runs and Kubeflow.

    [DataFingerprint: Kubeflow only] -> ImageExampleGen -> StatisticsGen
        -> SchemaGen (ImportSchemaGen when a schema is checked in) -> ExampleValidator
        -> Transform (models.preprocessing.preprocessing_fn: decode -> crop -> degrade)
        -> [Resolver: the latest blessed model, local only]
        -> Trainer (models.trainer.run_fn: pixel warm-up, then the GAN phase; warm start optional)
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
DATA_FINGERPRINT_ID = "DataFingerprint"
# Where a checked-in schema for a data layout would live (pipeline/schema_<layout>.pbtxt). When there
# is one, ImportSchemaGen replaces SchemaGen: the schema is reviewed, not re-inferred every run.
SCHEMA_DIR = os.path.join(REPO_ROOT, "pipeline")
# Where the pipeline runs. "local" (BeamDagRunner): the latest blessed model comes from a Resolver node
# (the Evaluator's baseline, the Trainer's warm start) and ImageExampleGen's driver fingerprints the data.
# "kubeflow" (open-source KFP runs neither Resolver nodes nor ExampleGen drivers): the latest blessed model
# is the newest version in cfg.serving_dir, and a DataFingerprint task feeds ImageExampleGen's cache key.
TARGETS = ("local", "kubeflow")


def create_pipeline(cfg: Config, components: Iterable | Dict | None = None, target: str = "local"):
    """The TFX pipeline for `cfg`: name, root, sqlite metadata, Beam args and caching from the config.

    `components`: the nodes to run (a list, or the dict of `create_components`), e.g. a prefix of it;
    default all of them. On Kubeflow (whose backend keeps the metadata) there is no sqlite config,
    which would create its directory under an object-storage root at compile time.
    """
    from tfx import v1 as tfx

    if components is None:
        components = create_components(cfg, target=target)
    if isinstance(components, dict):
        components = list(components.values())
    return tfx.dsl.Pipeline(
        pipeline_name=cfg.pipeline_name,
        pipeline_root=cfg.pipeline_root,
        components=list(components),
        enable_cache=cfg.enable_cache,
        metadata_connection_config=(tfx.orchestration.metadata.sqlite_metadata_connection_config(cfg.metadata_path)
                                    if target == "local" else None),
        beam_pipeline_args=list(cfg.beam_args),
    )


def create_components(cfg: Config, target: str = "local") -> OrderedDict[str, object]:
    """The pipeline's nodes in run order (every prefix is a runnable pipeline), keyed by short name."""
    from tfx import v1 as tfx

    from components.data_fingerprint import DataFingerprint
    from components.image_example_gen import ImageExampleGen

    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    c: OrderedDict[str, object] = OrderedDict()
    fingerprint = None
    if target == "kubeflow":
        c["data_fingerprint"] = DataFingerprint(data_root=cfg.data.root).with_id(DATA_FINGERPRINT_ID)
        fingerprint = c["data_fingerprint"].future_value()
    c["example_gen"] = ImageExampleGen(config=cfg.view(*CONFIG_VIEWS["example_gen"]), data_fingerprint=fingerprint)
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
    trainer_config, warm_start = custom_config(cfg, "trainer"), {}
    if target == "local":
        c["resolver"] = latest_blessed_model_resolver()
        if cfg.train.warm_start:
            warm_start = {"base_model": c["resolver"].outputs["model"]}
    elif cfg.train.warm_start:
        from models.trainer import WARM_START_FROM

        trainer_config[WARM_START_FROM] = cfg.serving_dir
    c["trainer"] = tfx.components.Trainer(
        run_fn=RUN_FN,
        examples=c["transform"].outputs["transformed_examples"],
        transform_graph=c["transform"].outputs["transform_graph"],
        schema=schema,
        train_args=tfx.proto.TrainArgs(num_steps=train_steps(cfg)),
        eval_args=tfx.proto.EvalArgs(num_steps=eval_steps(cfg)),
        custom_config=trainer_config, **warm_start)
    c.update(evaluation_components(cfg, c["transform"], c["trainer"], c.get("resolver")))
    return c


def latest_blessed_model_resolver():
    """Resolver(LatestBlessedModelStrategy): the model the gate compares with and a warm start begins from."""
    from tfx import v1 as tfx

    return tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id(RESOLVER_ID)


def transform_component(cfg: Config, examples, schema):
    """The Transform node (also used by benchmarks/datapath.py, so it measures this exact step).

    Its own statistics are off: the pre-transform ones repeat StatisticsGen's, and the post-transform
    ones would describe PNG bytes (byte lengths, top-k of encoded images): two TFDV passes over the
    data that tell nothing.
    """
    from tfx import v1 as tfx

    return tfx.components.Transform(examples=examples, schema=schema, preprocessing_fn=PREPROCESSING_FN,
                                    custom_config=custom_config(cfg, "transform"), disable_statistics=True)


def evaluation_components(cfg: Config, transform, trainer, resolver=None) -> OrderedDict[str, object]:
    """The gate and the push: ImageEvaluator (baseline: the resolver's model, else the newest version in
    the serving directory), Pusher (atomic)."""
    from components.atomic_pusher import make_pusher
    from components.image_evaluator import ImageEvaluator

    c: OrderedDict[str, object] = OrderedDict()
    if resolver is not None:
        baseline_kwargs = {"baseline_model": resolver.outputs["model"]}
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
