"""ImageExampleGen: a FileBasedExampleGen whose Beam executor turns image folders into tf.Examples.
(About 300 lines: the component, its driver, its executor and the executor's Beam pipeline are one
unit for TFX; the listing, the check, the shards and the ledger live in their own modules.)

    example_gen = ImageExampleGen(config=cfg)   # reads cfg.data.{root, layout, train_ratio, ...}

TFX machinery reused as is: FileBasedExampleGen's spec, the Examples artifact with span/version/
fingerprint and its payload/file format properties, Split-<name>/ dirs of TFRecords. What is ours: the
listing of the layout (components/image_listing.py), a Beam DoFn that checks every file
(components/image_check.py: it must decode in Transform) and normalises it to 8-bit RGB,
dataset-defined splits, rejects.tsv, Beam counters, the write (below), and a driver whose input
fingerprint covers every file below the root (so caching notices an image added to a sub-folder).

The write differs from TFX's WriteSplit on purpose (docs/benchmarks.md, data path): the records are
encoded images, which gzip cannot shrink (it cost 5 ms per BSD100 photo for a 1% gain), so they are
written uncompressed; TFX readers (tfx_bsl, Beam's ReadFromTFRecord) pick the compression from the
file suffix. And the order is shuffled on the file listing, before any image is read, instead of by a
Reshuffle of the encoded images, which sends every image through the Beam runner process once more.

The listing reaches the Beam pipeline as shard files (components/listing_shards.py), not inside the
job graph, which therefore has the same size for 20 images or 200,000 (Dataflow refuses graphs over
about 20 MB).

Output features (docs/architecture.md): id, image, blur (GOPRO only), height, width, scene.
Bad files (and whatever is not a regular file: components/tree_walk.py) are skipped, counted and
listed in `<examples uri>/rejects.tsv`. Beam counters, namespace `ImageExampleGen`: `files_read`,
`bytes_read`, `accepted`, `converted`, `rejected` and `rejected_<reason>`; they are the progress of
a run on a runner with a UI, and after the run they are logged, one line each, and stored as int
custom properties of the Examples artifact.
"""
from __future__ import annotations

import os
import random
from typing import Any, Dict, List

import apache_beam as beam
import tensorflow as tf
from absl import logging
from google.protobuf import any_pb2, struct_pb2
from tfx import types
from tfx.components.example_gen import base_example_gen_executor, driver, input_processor, utils, write_split
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ExecutionParameter
from tfx.utils import proto_utils

from components import image_check, image_listing, listing_shards, rejects_ledger
from components.image_listing import Candidate
from components.rejects_ledger import Reject
from config import Config
from contracts import features
from contracts.datasets import EVAL, TRAIN

NAMESPACE = "ImageExampleGen"
ACCEPTED, CONVERTED, REJECTED = "accepted", "converted", "rejected"  # counters; also rejected_<reason>
FILES_READ, BYTES_READ = "files_read", "bytes_read"
REJECTS_FILE = rejects_ledger.REJECTS_FILE
_REJECTS_TAG = "rejects"
DATA_FINGERPRINT_KEY = "data_fingerprint"
_LISTING_DIR = "listing-tmp"  # the listing's shards, under the Examples artifact while the run lasts
_SHUFFLE_SEED = 20240101


# -- the Config through ExampleGen's custom_config (a CustomConfig proto holding an Any) ------------


def make_custom_config(cfg: Config) -> example_gen_pb2.CustomConfig:
    """{"config": cfg.to_json()} (the project's convention) packed as a Struct in CustomConfig.Any."""
    packed = any_pb2.Any()
    packed.Pack(struct_pb2.Struct(fields={"config": struct_pb2.Value(string_value=cfg.to_json())}))
    return example_gen_pb2.CustomConfig(custom_config=packed)


def config_from_exec_properties(exec_properties: Dict[str, Any]) -> Config:
    raw = exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY)
    if not raw:
        raise ValueError(f"{NAMESPACE} needs custom_config=make_custom_config(cfg)")
    custom = example_gen_pb2.CustomConfig()
    proto_utils.json_to_proto(raw, custom)
    fields = struct_pb2.Struct()
    if not custom.custom_config.Unpack(fields) or "config" not in fields.fields:
        raise ValueError(f"{NAMESPACE}: custom_config does not hold a Struct with a 'config' JSON string")
    return Config.from_json(fields.fields["config"].string_value)


# -- Beam ------------------------------------------------------------------------------------------


def _bytes_feature(*values: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _int_feature(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def make_example(cand: Candidate, image: image_check.CheckedImage,
                 blur: image_check.CheckedImage | None) -> tf.train.Example:
    feature = {
        features.ID: _bytes_feature(cand.id.encode("utf-8")),
        features.IMAGE: _bytes_feature(image.data),
        features.HEIGHT: _int_feature(image.height),
        features.WIDTH: _int_feature(image.width),
        features.SCENE: _bytes_feature(cand.scene.encode("utf-8")),
    }
    if blur is not None:
        feature[features.BLUR] = _bytes_feature(blur.data)
    return tf.train.Example(features=tf.train.Features(feature=feature))


class _CheckAndEncode(beam.DoFn):
    """Candidate -> (split, serialized tf.Example); Reject (pre-listed or found here) -> rejects.
    Counts what it reads (files, bytes) as it goes: on a runner with a UI (Dataflow, Flink) these
    counters are the run's progress."""

    def __init__(self, root: str, min_size: int, max_pixels: int):
        self._root, self._min_size, self._max_pixels = root, min_size, max_pixels

    def setup(self):
        self._files_read = beam.metrics.Metrics.counter(NAMESPACE, FILES_READ)
        self._bytes_read = beam.metrics.Metrics.counter(NAMESPACE, BYTES_READ)

    def _read(self, path: str) -> bytes:
        data = image_check.read_file(path)
        self._files_read.inc()
        self._bytes_read.inc(len(data))
        return data

    def process(self, item):
        if isinstance(item, Reject):
            yield from self._reject(item)
            return
        try:
            image, blur = image_check.check_candidate(self._root, item, self._min_size, self._max_pixels, self._read)
        except image_check.RejectedPath as e:
            yield from self._reject(e.reject)
            return
        beam.metrics.Metrics.counter(NAMESPACE, ACCEPTED).inc()
        if image.converted or (blur is not None and blur.converted):
            beam.metrics.Metrics.counter(NAMESPACE, CONVERTED).inc()
        # deterministic: the features map in a fixed order, so a rerun writes the same bytes
        yield item.split, make_example(item, image, blur).SerializeToString(deterministic=True)

    def _reject(self, reject: Reject):
        beam.metrics.Metrics.counter(NAMESPACE, REJECTED).inc()
        beam.metrics.Metrics.counter(NAMESPACE, f"{REJECTED}_{reject.reason}").inc()
        yield beam.pvalue.TaggedOutput(_REJECTS_TAG, reject)


@beam.ptransform_fn
def IngestImages(pipeline: beam.Pipeline, shards: listing_shards.Shards, min_size: int, max_pixels: int):
    """The listing's shards -> outputs `examples` ((split, serialized tf.Example)) and `rejects` (Reject)."""
    return (pipeline
            | "ListFiles" >> listing_shards.ReadListing(shards)
            | "CheckAndEncode" >> beam.ParDo(_CheckAndEncode(shards.root, min_size, max_pixels)).with_outputs(
                _REJECTS_TAG, main="examples"))


def write_listing(listing: image_listing.Listing, directory: str) -> listing_shards.Shards:
    """The listing as shard files, in the order images are read and written: pre-listed rejects, then
    the candidates shuffled on names (seeded: reruns write the same files), so the records need no
    shuffle of their own."""
    candidates = list(listing.candidates)
    random.Random(_SHUFFLE_SEED).shuffle(candidates)
    return listing_shards.write(list(listing.rejects) + candidates, listing.root, directory)


def build_pipeline(pipeline: beam.Pipeline, shards: listing_shards.Shards, split_names: List[str],
                   examples_uri: str, min_size: int, max_pixels: int) -> None:
    """Every step of the ingestion into `pipeline`: read the listing, check and encode every file, write
    each split's TFRecords and rejects.tsv under `examples_uri`. Its size does not depend on the
    number of files (tests/test_ingestion_scale.py)."""
    out = pipeline | "IngestImages" >> IngestImages(shards, min_size, max_pixels)
    rejects_path = os.path.join(examples_uri, REJECTS_FILE)
    _ = (out[_REJECTS_TAG]
         | "CollectRejects" >> beam.combiners.ToList()
         | "WriteRejects" >> beam.Map(_write_rejects, rejects_path))
    parts = out.examples | "BySplit" >> beam.Partition(lambda kv, _n: split_names.index(kv[0]), len(split_names))
    for i, name in enumerate(split_names):
        prefix = os.path.join(examples_uri, f"Split-{name}", write_split.DEFAULT_TF_RECORD_FILE_NAME)
        _ = parts[i] | f"Records[{name}]" >> beam.Values() | f"WriteSplit[{name}]" >> beam.io.WriteToTFRecord(prefix)


def _write_rejects(rejects: List[Reject], path: str) -> None:
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(rejects_ledger.format_rejects(rejects))


class Executor(base_example_gen_executor.BaseExampleGenExecutor):
    """Lists the layout in Do (cheap, names only) into shard files, then reads, checks, encodes and
    writes every image in Beam."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return IngestImages

    def _make_beam_pipeline(self):
        # Keep the pipeline: Beam leaves the PipelineResult (our counters) on `pipeline.result`.
        self._pipeline = super()._make_beam_pipeline()
        return self._pipeline

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        cfg = config_from_exec_properties(exec_properties)
        root = exec_properties.get(standard_component_specs.INPUT_BASE_KEY) or cfg.data.root
        listing = image_listing.scan(root, cfg.data.layout, cfg.data.train_ratio)
        examples = artifact_utils.get_single_instance(output_dict[standard_component_specs.EXAMPLES_KEY])
        rejects_path = os.path.join(examples.uri, REJECTS_FILE)
        _warn_empty_splits(listing)
        logging.info("%s: %d candidate images and %d rejects listed under %s", NAMESPACE, len(listing.candidates),
                     len(listing.rejects), root)

        # One pass over all files: the splits come from the dataset (partition file, GOPRO folders) or
        # a hash of the id, not from per-split input globs; their names are known only now (CelebA has
        # a test split when the partition file is there).
        examples.split_names = artifact_utils.encode_split_names(listing.split_names)
        shards = write_listing(listing, os.path.join(examples.uri, _LISTING_DIR))
        with self._make_beam_pipeline() as pipeline:
            build_pipeline(pipeline, shards, listing.split_names, examples.uri,
                           cfg.data.min_size or cfg.data.crop_size, cfg.data.max_pixels)
        listing_shards.remove(shards)
        examples_utils.set_payload_format(examples, exec_properties.get(
            standard_component_specs.OUTPUT_DATA_FORMAT_KEY, example_gen_pb2.FORMAT_TF_EXAMPLE))
        # TFX's name for "TFRecord files" (the only one its readers accept); they detect the
        # compression from the suffix, and ours have none.
        examples_utils.set_file_format(examples, "tfrecords_gzip")
        fingerprint = exec_properties.get(DATA_FINGERPRINT_KEY)
        if fingerprint:  # Kubeflow: DataFingerprint's (no driver runs there); local runs: the driver's
            examples.set_string_custom_property(utils.FINGERPRINT_PROPERTY_NAME, fingerprint)

        counts = _counters(self._pipeline.result)
        if counts is None:
            logging.warning("%s: this runner reports no metrics; see %s for the rejects", NAMESPACE, rejects_path)
            return
        for name in sorted(counts):
            examples.set_int_custom_property(name, counts[name])
            log = logging.warning if name.startswith(f"{REJECTED}_") else logging.info
            log("%s summary: %s = %d", NAMESPACE, name, counts[name])
        if not counts.get(ACCEPTED):
            raise ValueError(f"{NAMESPACE}: no usable image under {root!r}; every file is listed with its "
                             f"reason in {rejects_path}")


def _output_config(split_names: List[str], train_ratio: float) -> example_gen_pb2.Output:
    """Output splits in ExampleGen's terms. The buckets describe the hash split of the folder layout;
    the executor assigns splits itself (image_listing), so they are documentation only."""
    buckets = {TRAIN: max(1, round(100 * train_ratio)), EVAL: max(1, 100 - round(100 * train_ratio))}
    return example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
        example_gen_pb2.SplitConfig.Split(name=n, hash_buckets=buckets.get(n, 1)) for n in split_names]))


def _warn_empty_splits(listing: image_listing.Listing) -> None:
    for name in listing.split_names:
        if not any(c.split == name for c in listing.candidates):
            logging.warning("%s: split %r has no candidate image under %s", NAMESPACE, name, listing.root)


def _counters(result) -> Dict[str, int] | None:
    """{counter name: value} of our namespace, from a finished PipelineResult (None if unsupported)."""
    from apache_beam.metrics.metric import MetricsFilter

    try:
        found = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]
    except (AttributeError, NotImplementedError, KeyError) as e:
        logging.warning("%s: cannot query Beam metrics: %s", NAMESPACE, e)
        return None
    counts: Dict[str, int] = {}
    for c in found:
        value = c.committed if c.committed is not None else c.attempted
        counts[c.key.metric.name] = counts.get(c.key.metric.name, 0) + int(value or 0)
    for name in (FILES_READ, BYTES_READ, ACCEPTED, CONVERTED, REJECTED):
        counts.setdefault(name, 0)
    return counts


# -- the component ---------------------------------------------------------------------------------


class _TreeInputProcessor(input_processor.FileBasedInputProcessor):
    """TFX's file-based span/version resolution, with the input fingerprint over every file below the
    root (image_listing.tree_fingerprint), so a cached run is reused only when no image was added,
    removed or changed. Without a {SPAN}/{VERSION}/date pattern there is nothing to resolve, and TFX's
    own pass (a glob of `root/*` that stats every match) is skipped: one dangling symlink or symlink
    loop at the top of the data folder made it abort the run."""

    def resolve_span_and_version(self):
        if self._is_match_span or self._is_match_date or self._is_match_version:
            return super().resolve_span_and_version()
        return 0, None

    def get_input_fingerprint(self, span, version):
        return image_listing.tree_fingerprint(self._input_base_uri)


class _TreeFingerprintDriver(driver.FileBasedDriver):
    def get_input_processor(self, splits, range_config=None, input_base_uri=None):
        return _TreeInputProcessor(input_base_uri, splits, range_config)


class ImageExampleGenSpec(standard_component_specs.FileBasedExampleGenSpec):
    """FileBasedExampleGen's spec plus `data_fingerprint`: on Kubeflow the fingerprint of the data root,
    a parameter from components/data_fingerprint.py, so that KFP's cache key changes with the data."""

    PARAMETERS = {**standard_component_specs.FileBasedExampleGenSpec.PARAMETERS,
                  DATA_FINGERPRINT_KEY: ExecutionParameter(type=str, optional=True)}


class ImageExampleGen(FileBasedExampleGen):
    """ExampleGen for image folders, CelebA and GOPRO layouts; every setting from the Config."""

    SPEC_CLASS = ImageExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
    DRIVER_CLASS = _TreeFingerprintDriver

    def __init__(self, config: Config, data_fingerprint=None):
        """`data_fingerprint`: a placeholder of DataFingerprint's output (Kubeflow), or None (local runs,
        where the driver fingerprints the tree itself)."""
        if not config.data.root:
            raise ValueError("data.root is empty: set it to the folder that holds the images")
        input_config = utils.make_default_input_config()
        spec = ImageExampleGenSpec(
            input_base=config.data.root, input_config=input_config,
            output_config=_output_config([TRAIN, EVAL], config.data.train_ratio),
            custom_config=make_custom_config(config), range_config=None,
            output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
            output_file_format=example_gen_pb2.FORMAT_TFRECORDS_GZIP,
            data_fingerprint=data_fingerprint,
            examples=types.Channel(type=standard_artifacts.Examples))
        base_component.BaseComponent.__init__(self, spec=spec)
