"""ImageExampleGen: a FileBasedExampleGen whose Beam executor turns image folders into tf.Examples.

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

Output features (docs/architecture.md): id, image, blur (GOPRO only), height, width, scene.
Bad files are skipped, counted (namespace `ImageExampleGen`: `accepted`, `converted`,
`rejected_<reason>`) and listed in `<examples uri>/rejects.tsv`; the counts are also logged, one
line per reason, and stored as int custom properties of the Examples artifact.
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
from tfx.components.example_gen import base_example_gen_executor, driver, utils, write_split
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ExecutionParameter
from tfx.utils import proto_utils

from components import image_check, image_listing, rejects_ledger
from components.image_listing import Candidate, Reject
from config import Config
from contracts import features
from contracts.datasets import EVAL, TRAIN

NAMESPACE = "ImageExampleGen"
ACCEPTED, CONVERTED = "accepted", "converted"
REJECTS_FILE = rejects_ledger.REJECTS_FILE
_REJECTS_TAG = "rejects"
DATA_FINGERPRINT_KEY = "data_fingerprint"
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
    """Candidate -> (split, serialized tf.Example); Reject (pre-listed or found here) -> rejects."""

    def __init__(self, root: str, min_size: int, max_pixels: int):
        self._root, self._min_size, self._max_pixels = root, min_size, max_pixels

    def process(self, item):
        if isinstance(item, Reject):
            yield from self._reject(item)
            return
        try:
            image, blur = image_check.check_candidate(self._root, item, self._min_size, self._max_pixels)
        except image_check.RejectedPath as e:
            yield from self._reject(e.reject)
            return
        beam.metrics.Metrics.counter(NAMESPACE, ACCEPTED).inc()
        if image.converted or (blur is not None and blur.converted):
            beam.metrics.Metrics.counter(NAMESPACE, CONVERTED).inc()
        yield item.split, make_example(item, image, blur).SerializeToString()

    def _reject(self, reject: Reject):
        beam.metrics.Metrics.counter(NAMESPACE, f"rejected_{reject.reason}").inc()
        yield beam.pvalue.TaggedOutput(_REJECTS_TAG, reject)


@beam.ptransform_fn
def IngestImages(pipeline: beam.Pipeline, listing: image_listing.Listing, min_size: int, max_pixels: int):
    """Listing -> outputs `examples` ((split, serialized tf.Example)) and `rejects` (Reject)."""
    # Shuffled here, on names (seeded: reruns write the same files), so the records need no shuffle.
    candidates = list(listing.candidates)
    random.Random(_SHUFFLE_SEED).shuffle(candidates)
    items: List[Any] = list(listing.rejects) + candidates
    return (pipeline
            | "ListFiles" >> beam.Create(items)
            | "CheckAndEncode" >> beam.ParDo(_CheckAndEncode(listing.root, min_size, max_pixels)).with_outputs(
                _REJECTS_TAG, main="examples"))


def _write_rejects(rejects: List[Reject], path: str) -> None:
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(rejects_ledger.format_rejects(rejects))


class Executor(base_example_gen_executor.BaseExampleGenExecutor):
    """Lists the layout in Do (cheap, names only), then checks, encodes and writes every image in Beam."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return IngestImages

    def GenerateExamplesByBeam(self, pipeline: beam.Pipeline, exec_properties: Dict[str, Any]
                               ) -> Dict[str, beam.pvalue.PCollection]:
        # One pass over all files: the splits come from the dataset (partition file, GOPRO folders)
        # or a hash of the id, not from per-split input globs.
        listing = self._listing
        out = pipeline | "IngestImages" >> self.GetInputSourceToExamplePTransform()(
            listing, self._min_size, self._max_pixels)
        _ = (out[_REJECTS_TAG]
             | "CollectRejects" >> beam.combiners.ToList()
             | "WriteRejects" >> beam.Map(_write_rejects, self._rejects_path))
        names = listing.split_names
        parts = out.examples | "BySplit" >> beam.Partition(lambda kv, _n: names.index(kv[0]), len(names))
        return {name: parts[i] | f"Records[{name}]" >> beam.Values() for i, name in enumerate(names)}

    def _make_beam_pipeline(self):
        # Keep the pipeline: BaseExampleGenExecutor.Do runs it in a `with` block, and Beam leaves the
        # PipelineResult (our counters) on `pipeline.result`.
        self._pipeline = super()._make_beam_pipeline()
        return self._pipeline

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        cfg = config_from_exec_properties(exec_properties)
        root = exec_properties.get(standard_component_specs.INPUT_BASE_KEY) or cfg.data.root
        self._listing = image_listing.scan(root, cfg.data.layout, cfg.data.train_ratio)
        self._min_size = cfg.data.min_size or cfg.data.crop_size
        self._max_pixels = cfg.data.max_pixels
        examples = artifact_utils.get_single_instance(output_dict[standard_component_specs.EXAMPLES_KEY])
        self._rejects_path = os.path.join(examples.uri, REJECTS_FILE)
        _warn_empty_splits(self._listing)

        # The split names are known only now (CelebA has a test split when the partition file is there).
        examples.split_names = artifact_utils.encode_split_names(self._listing.split_names)
        with self._make_beam_pipeline() as pipeline:
            for name, records in self.GenerateExamplesByBeam(pipeline, exec_properties).items():
                split_dir = artifact_utils.get_split_uri([examples], name)
                prefix = os.path.join(split_dir, write_split.DEFAULT_TF_RECORD_FILE_NAME)
                _ = records | f"WriteSplit[{name}]" >> beam.io.WriteToTFRecord(prefix)
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
            logging.warning("%s: this runner reports no metrics; see %s for the rejects", NAMESPACE,
                            self._rejects_path)
            return
        for name in sorted(counts):
            examples.set_int_custom_property(name, counts[name])
            log = logging.warning if name.startswith("rejected_") else logging.info
            log("%s summary: %s = %d", NAMESPACE, name, counts[name])
        if not counts.get(ACCEPTED):
            raise ValueError(f"{NAMESPACE}: no usable image under {root!r}; every file is listed with its "
                             f"reason in {self._rejects_path}")


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
    counts.setdefault(ACCEPTED, 0)
    return counts


# -- the component ---------------------------------------------------------------------------------


class _TreeFingerprintDriver(driver.FileBasedDriver):
    """FileBasedDriver (span/version resolution) with an input fingerprint over every file below the
    root, so a cached run is reused only when no image was added, removed or changed."""

    def resolve_exec_properties(self, exec_properties, pipeline_info, component_info):
        exec_properties = super().resolve_exec_properties(exec_properties, pipeline_info, component_info)
        root = exec_properties[standard_component_specs.INPUT_BASE_KEY]
        exec_properties[utils.FINGERPRINT_PROPERTY_NAME] = image_listing.tree_fingerprint(root)
        return exec_properties


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
