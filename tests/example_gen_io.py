"""Running ImageExampleGen's executor as the TFX launcher does, and reading back what it wrote: the
splits (tf.data over Split-<name>/*), rejects.tsv, and how each image was stored."""
import glob
import os

import numpy as np
import tensorflow as tf
from tfx.proto import example_gen_pb2

from components import rejects_ledger
from components.image_example_gen import Executor, make_custom_config
from models import images


def run_executor(cfg, out_dir):
    """Executor.Do on a fresh Examples artifact, as the TFX launcher calls it (real Beam, in memory)."""
    from tfx.components.example_gen import utils
    from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
    from tfx.types import standard_artifacts
    from tfx.utils import proto_utils

    examples = standard_artifacts.Examples()
    examples.uri = str(out_dir)
    exec_properties = {
        "input_base": cfg.data.root,
        "input_config": proto_utils.proto_to_json(utils.make_default_input_config()),
        "output_config": proto_utils.proto_to_json(example_gen_pb2.Output()),
        "custom_config": proto_utils.proto_to_json(make_custom_config(cfg)),
        "output_data_format": example_gen_pb2.FORMAT_TF_EXAMPLE,
        "output_file_format": example_gen_pb2.FORMAT_TFRECORDS_GZIP,
    }
    executor = Executor(BaseBeamExecutor.Context(beam_pipeline_args=[]))
    executor.Do({}, {"examples": [examples]}, exec_properties)
    return examples


def read_split(uri, split):
    """{id: feature dict} of one output split, read with tf.data from Split-<name>/* (uncompressed TFRecords)."""
    files = glob.glob(os.path.join(uri, f"Split-{split}", "*"))
    assert files, f"no TFRecord files in Split-{split}"
    out = {}
    for rec in tf.data.TFRecordDataset(files).as_numpy_iterator():
        ex = tf.train.Example.FromString(rec)
        feats = {}
        for k, f in ex.features.feature.items():
            kind = f.WhichOneof("kind")
            assert kind in ("bytes_list", "int64_list"), f"{k} is {kind}: encoded bytes and ints only"
            values = list(getattr(f, kind).value)
            assert len(values) == 1, k
            feats[k] = values[0]
        out[feats["id"].decode()] = feats
    return out


def read_rejects(uri):
    with open(os.path.join(uri, rejects_ledger.REJECTS_FILE)) as f:
        return {r.path: r.reason for r in rejects_ledger.parse_rejects(f.read())}


def assert_stored_as(feats, source: bytes, converted: bool):
    """8-bit RGB PNG/JPEG are kept byte for byte; other modes become a PNG of exactly `to_rgb8`'s
    pixels. Either way the stored image decodes with TF, as Transform will, at the stated size."""
    decoded = images.tf_decode_rgb8(feats["image"]).numpy()
    assert decoded.shape == (feats["height"], feats["width"], 3)
    if converted:
        assert feats["image"].startswith(b"\x89PNG")
        np.testing.assert_array_equal(decoded, images.read_rgb8(source))
    else:
        assert feats["image"] == source
