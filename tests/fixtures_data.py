"""Real Transform output for tests, built once per session with tf.Transform on Beam.

Runs `models.preprocessing.preprocessing_fn` (the pipeline's own Transform code) with tft_beam on a
few of the committed sample photographs (data/samples), and lays the result out like TFX's Transform
artifacts:

    <root>/transform_graph/            transform_fn/, transformed_metadata/ (tft.TFTransformOutput)
    <root>/transformed_examples/Split-train/transformed_examples-00000-of-00001.gz
    <root>/transformed_examples/Split-eval/transformed_examples-00000-of-00001.gz

API (imported by conftest.py):
    fixture_config(task) -> Config        the tiny preset at test size (crop 32, batch 4, few steps)
    build_transformed_data(cfg, image_paths, root, n_eval) -> TransformedData
    session fixtures `transformed_sr`, `transformed_deblur` -> TransformedData
"""
from __future__ import annotations

import functools
import glob
import os
from dataclasses import dataclass
from typing import List, Sequence

import pytest

from config import SAMPLE_DATA, Config, preset

SAMPLES_USED = 12  # 9 train + 3 eval: enough for shuffling and a fixed eval batch, seconds to transform
EVAL_SAMPLES = 3


@dataclass
class TransformedData:
    cfg: Config  # the configuration the data was transformed with
    root: str
    transform_graph: str  # the Transform graph directory (fn_args.transform_output)
    train_files: List[str]  # file patterns, as fn_args.train_files
    eval_files: List[str]
    train_split_dir: str  # <root>/transformed_examples/Split-train
    eval_split_dir: str


def fixture_config(task: str, **overrides) -> Config:
    """The tiny preset shrunk to test size; no batch norm, so replicas agree exactly."""
    base = {"data.crop_size": 32, "data.blur_kernel_size": 7, "train.batch_size": 4,
            "train.warmup_steps": 4, "train.gan_steps": 4, "train.shuffle_buffer": 16,
            "train.log_every": 2, "train.image_every": 4, "train.checkpoint_every": 4,
            "model.batch_norm": False}
    base.update(overrides)
    return preset("tiny", task=task, overrides=base)


def build_transformed_data(cfg: Config, image_paths: Sequence[str], root: str, n_eval: int) -> TransformedData:
    import apache_beam as beam
    import tensorflow as tf
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

    from models.preprocessing import preprocessing_fn

    def examples(paths):
        out = []
        for p in paths:
            with open(p, "rb") as f:
                out.append({"id": os.path.splitext(os.path.basename(p))[0].encode(), "image": f.read()})
        return out

    train, evals = examples(image_paths[n_eval:]), examples(image_paths[:n_eval])
    raw_spec = {"id": tf.io.FixedLenFeature([], tf.string), "image": tf.io.FixedLenFeature([], tf.string)}
    raw_metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(raw_spec))
    graph_dir = os.path.join(root, "transform_graph")
    split_dirs = {s: os.path.join(root, "transformed_examples", f"Split-{s}") for s in ("train", "eval")}
    fn = functools.partial(preprocessing_fn, custom_config={"config": cfg.to_json()})

    with beam.Pipeline() as p, tft_beam.Context(temp_dir=os.path.join(root, "tft_tmp")):
        raw_train = p | "Train" >> beam.Create(train)
        raw_eval = p | "Eval" >> beam.Create(evals)
        (t_train, t_metadata), transform_fn = (raw_train, raw_metadata) | tft_beam.AnalyzeAndTransformDataset(fn)
        t_eval, _ = ((raw_eval, raw_metadata), transform_fn) | tft_beam.TransformDataset()
        _ = transform_fn | tft_beam.WriteTransformFn(graph_dir)
        coder = tft.coders.ExampleProtoCoder(t_metadata.schema)
        for split, data in (("train", t_train), ("eval", t_eval)):
            _ = (data | f"Encode{split}" >> beam.Map(coder.encode)
                 | f"Write{split}" >> beam.io.WriteToTFRecord(
                     os.path.join(split_dirs[split], "transformed_examples"), file_name_suffix=".gz",
                     num_shards=1, compression_type=beam.io.filesystem.CompressionTypes.GZIP))
    return TransformedData(cfg=cfg, root=root, transform_graph=graph_dir,
                           train_files=[os.path.join(split_dirs["train"], "*")],
                           eval_files=[os.path.join(split_dirs["eval"], "*")],
                           train_split_dir=split_dirs["train"], eval_split_dir=split_dirs["eval"])


def sample_paths(n: int = SAMPLES_USED) -> List[str]:
    """`n` committed sample photographs (128x128 PNG tiles), every fifth one: tiles of all six photographs."""
    paths = sorted(glob.glob(os.path.join(SAMPLE_DATA, "*.png")))[::5][:n]
    assert len(paths) == n, f"data/samples holds {len(paths)} PNGs, need {n}"
    return paths


@pytest.fixture(scope="session")
def transformed_sr(tmp_path_factory) -> TransformedData:
    """SR pairs (32x32 HR, 8x8 LR) from 12 sample photographs, transformed with fixture_config('sr')."""
    return build_transformed_data(fixture_config("sr"), sample_paths(),
                                  str(tmp_path_factory.mktemp("transformed_sr")), EVAL_SAMPLES)


@pytest.fixture(scope="session")
def transformed_deblur(tmp_path_factory) -> TransformedData:
    """Deblur pairs (32x32, synthetic motion blur) from 12 sample photographs, fixture_config('deblur')."""
    return build_transformed_data(fixture_config("deblur"), sample_paths(),
                                  str(tmp_path_factory.mktemp("transformed_deblur")), EVAL_SAMPLES)
