"""The Transform step's preprocessing_fn on real images, run by tf.Transform on Beam.

tf.Examples are built here by ImageExampleGen's own check and make_example (`id`, `image`, `blur`
for GOPRO pairs) from the committed sample photographs (as JPEG and PNG, larger pictures made of
them, and sharp/blurred pairs), parsed by tfx_bsl's
TFExampleRecord with a schema like SchemaGen's (fixed shape [1]) or without shapes (sparse), then
analysed and transformed by `tft_beam.AnalyzeAndTransformDataset`.
"""
import glob
import os
import tempfile

import numpy as np
import pytest
import sample_images
import tensorflow as tf

from components import image_check, image_listing
from components.image_example_gen import make_example
from config import preset
from contracts import features
from models import degrade, images, preprocessing

CROP = 64


def _example(example_id: str, image: bytes, blur: bytes | None = None) -> bytes:
    """The tf.Example ImageExampleGen writes for these bytes (its own check and make_example)."""
    def check(data):
        return image_check.check_image(data, CROP, 10**9)

    cand = image_listing.Candidate(id=example_id, split="train", scene="", image="", blur=None if blur is None else "")
    return make_example(cand, check(image), None if blur is None else check(blur)).SerializeToString()


def _schema(names, fixed_shape: bool):
    """SchemaGen's inferred form (shape [1], dense [N, 1] tensors) or the shapeless one (sparse)."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = schema_pb2.Schema()
    for n in names:
        f = schema.feature.add(name=n, type=schema_pb2.BYTES)
        f.presence.min_fraction = 1.0
        if fixed_shape:
            f.shape.dim.add(size=1)
        else:
            f.value_count.min = f.value_count.max = 1
    return schema


def run_transform(cfg, records, names=("id", "image"), fixed_shape=True):
    """AnalyzeAndTransformDataset over serialized tf.Examples -> {id: transformed features}.

    The output goes through the transformed schema's tf.Example coder to a TFRecord file, as the
    Transform component writes it, and is read back from there.
    """
    import apache_beam as beam
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from tfx_bsl.public import tfxio

    custom_config = {"config": cfg.to_json()}
    with tempfile.TemporaryDirectory() as tmp:
        with tft_beam.Context(temp_dir=os.path.join(tmp, "tft")), beam.Pipeline() as p:
            source = tfxio.TFExampleBeamRecord(physical_format="inmem", telemetry_descriptors=["test"],
                                               schema=_schema(names, fixed_shape))
            raw = p | beam.Create(records) | source.BeamSource()
            (data, metadata), _ = ((raw, source.TensorAdapterConfig())
                                   | tft_beam.AnalyzeAndTransformDataset(
                                       lambda x: preprocessing.preprocessing_fn(x, custom_config)))
            _ = (data | beam.Map(tft.coders.ExampleProtoCoder(metadata.schema).encode)
                 | beam.io.WriteToTFRecord(os.path.join(tmp, "out"), num_shards=1))
        files = glob.glob(os.path.join(tmp, "out*"))
        expected = set(features.TRANSFORMED) | ({"target_mean"} if cfg.data.dataset_mean else set())
        records = tf.data.TFRecordDataset(files).as_numpy_iterator()
        return {ex["id"]: ex for ex in (_parse(r, expected) for r in records)}


def _parse(serialized: bytes, expected_features) -> dict:
    f = tf.train.Example.FromString(serialized).features.feature
    assert set(f) == expected_features, sorted(f)
    out = {k: f[k].bytes_list.value[0] for k in ("target", "degraded")}
    out["id"] = f["id"].bytes_list.value[0].decode()
    if "target_mean" in f:
        out["target_mean"] = np.array(f["target_mean"].float_list.value)
    return out


def _decode(png: bytes) -> np.ndarray:
    return tf.io.decode_png(png, channels=3).numpy()


def _tf_rgb8(data: bytes) -> np.ndarray:
    return images.tf_decode_rgb8(data).numpy()  # the decoder the Transform graph uses (JPEG included)


@pytest.fixture(scope="module")
def sr_inputs():
    inputs = {name: sample_images.jpeg(name) for name in sample_images.pick(3)}
    inputs["mosaic"] = images.encode_png(sample_images.mosaic(2, 3))  # 256x384: another size in the batch
    return inputs


@pytest.fixture(scope="module")
def sr_cfg():
    return preset("tiny", task="sr", overrides={"data.crop_size": CROP})


@pytest.fixture(scope="module")
def sr_out(sr_cfg, sr_inputs):
    return run_transform(sr_cfg, [_example(k, v) for k, v in sr_inputs.items()])


@pytest.fixture(scope="module")
def deblur_cfg():
    return preset("tiny", task="deblur", overrides={"data.crop_size": CROP})


@pytest.fixture(scope="module")
def faces():
    return {name: sample_images.jpeg(name) for name in sample_images.pick(3, step=7)}


@pytest.fixture(scope="module")
def synthetic_out(deblur_cfg, faces):
    return run_transform(deblur_cfg, [_example(k, v) for k, v in faces.items()])


def test_sr_pairs_are_centre_crop_and_matlab_bicubic_lr(sr_cfg, sr_inputs, sr_out):
    assert set(sr_out) == set(sr_inputs)
    for key, data in sr_inputs.items():
        hr, lr = _decode(sr_out[key]["target"]), _decode(sr_out[key]["degraded"])
        assert hr.shape == (CROP, CROP, 3) and lr.shape == (CROP // 4, CROP // 4, 3), key
        full = _tf_rgb8(data)
        y, x = (full.shape[0] - CROP) // 2, (full.shape[1] - CROP) // 2
        np.testing.assert_array_equal(hr, full[y:y + CROP, x:x + CROP], err_msg=key)
        # LR = models/degrade's MATLAB imresize of the crop, rounded to uint8.
        expected = images.tf_to_uint8(degrade.imresize(images.tf_to_float(hr), 1 / 4)).numpy()
        np.testing.assert_array_equal(lr, expected, err_msg=key)


def test_dataset_mean_is_the_full_pass_mean_of_the_targets(sr_cfg, sr_inputs, sr_out):
    assert all("target_mean" not in d for d in sr_out.values())  # off by default: no analysis pass
    out = run_transform(sr_cfg.override({"data.dataset_mean": True}), [_example(k, v) for k, v in sr_inputs.items()])
    crops = np.stack([_decode(d["target"]).astype(np.float64).mean(axis=(0, 1)) / 255.0 for d in sr_out.values()])
    for key, d in out.items():
        assert d["target"] == sr_out[key]["target"] and d["degraded"] == sr_out[key]["degraded"]
        assert d["target_mean"].shape == (3,)
        np.testing.assert_allclose(d["target_mean"], crops.mean(axis=0), atol=1e-5)


def test_deblur_real_pairs_are_aligned_crops(deblur_cfg):
    # GOPRO-style pairs: 256x256 sharp frames and their blurred frames (a camera-shake blur).
    pairs = {}
    for i in range(3):
        sharp = sample_images.mosaic(2, 2, start=20 * i)
        pairs[f"scene/{i:06d}"] = (images.encode_png(sharp), images.encode_png(sample_images.blurred(sharp, seed=i)))
    # No shapes in the schema: the features reach preprocessing_fn as SparseTensors.
    out = run_transform(deblur_cfg, [_example(k, s, b) for k, (s, b) in pairs.items()],
                        names=("id", "image", "blur"), fixed_shape=False)
    assert set(out) == set(pairs)
    offsets = set()
    for key, (sharp_png, blur_png) in pairs.items():
        sharp, blurred = _tf_rgb8(sharp_png), _tf_rgb8(blur_png)
        target, degraded = _decode(out[key]["target"]), _decode(out[key]["degraded"])
        assert target.shape == degraded.shape == (CROP, CROP, 3)
        seed, _ = preprocessing.example_seeds(tf.constant(key), deblur_cfg)
        y, x = (int(v) for v in preprocessing.crop_offset(sharp.shape[0], sharp.shape[1], seed, deblur_cfg))
        np.testing.assert_array_equal(target, sharp[y:y + CROP, x:x + CROP])
        np.testing.assert_array_equal(degraded, blurred[y:y + CROP, x:x + CROP])  # same place: aligned
        offsets.add((y, x))
    assert len(offsets) == len(pairs)  # positions vary by id (frames are much larger than the crop)


def _gradient_energy(img: np.ndarray) -> float:
    g = img.astype(np.float64).mean(axis=2)
    return float(np.mean(np.diff(g, axis=0) ** 2) + np.mean(np.diff(g, axis=1) ** 2))


def test_deblur_synthetic_blur_of_sharp_only_data(faces, synthetic_out):
    assert set(synthetic_out) == set(faces)
    for key, data in faces.items():
        target, degraded = _decode(synthetic_out[key]["target"]), _decode(synthetic_out[key]["degraded"])
        assert target.shape == degraded.shape == (CROP, CROP, 3)
        full = _tf_rgb8(data)
        hits = [(y, x) for y in range(full.shape[0] - CROP + 1) for x in range(full.shape[1] - CROP + 1)
                if full[y, x, 0] == target[0, 0, 0] and np.array_equal(full[y:y + CROP, x:x + CROP], target)]
        assert hits, f"{key}: target is not a crop of the image"
        # A motion blur is a convex combination: colours stay, detail goes (DeblurGAN's short
        # exposures give mild blurs, so only "less detail" holds for every example).
        assert not np.array_equal(degraded, target), key
        np.testing.assert_allclose(degraded.mean(axis=(0, 1)), target.mean(axis=(0, 1)), atol=6.0)
        assert _gradient_energy(degraded) < _gradient_energy(target), key


def test_transform_is_deterministic_across_runs(deblur_cfg, faces, synthetic_out):
    again = run_transform(deblur_cfg, [_example(k, v) for k, v in reversed(list(faces.items()))])
    for key in faces:
        assert again[key]["target"] == synthetic_out[key]["target"], key
        assert again[key]["degraded"] == synthetic_out[key]["degraded"], key
    # A different blur_seed draws other kernels (and crops) for the same ids.
    other = deblur_cfg.override({"data.blur_seed": 1})
    key, data = next(iter(faces.items()))
    t0, d0 = preprocessing.make_pair(tf.constant(key), tf.constant(data), None, deblur_cfg)
    t1, d1 = preprocessing.make_pair(tf.constant(key), tf.constant(data), None, other)
    assert np.array_equal(t0.numpy(), _decode(synthetic_out[key]["target"]))  # eager == Beam graph
    assert not (np.array_equal(t0.numpy(), t1.numpy()) and np.array_equal(d0.numpy(), d1.numpy()))


def test_image_smaller_than_crop_is_a_clear_error(sr_cfg):
    small = images.encode_png(np.zeros((CROP - 1, 2 * CROP, 3), np.uint8))
    with pytest.raises(tf.errors.InvalidArgumentError, match="smaller than data.crop_size"):
        preprocessing.make_pair(tf.constant("tiny/one"), tf.constant(small), None, sr_cfg)


def test_preprocessing_fn_requires_the_config():
    with pytest.raises(ValueError, match="custom_config"):
        preprocessing.preprocessing_fn({"id": tf.constant(["a"]), "image": tf.constant([b""])}, {})


def test_deblur_mixes_real_pairs_and_sharp_only_frames(deblur_cfg):
    """One data set with real pairs and sharp-only frames (no `blur`): the former keep their real blur,
    the latter are blurred synthetically, in the same batch."""
    sharp = sample_images.mosaic(2, 2)
    real = sample_images.blurred(sharp, seed=5)
    records = [_example("scene/real", images.encode_png(sharp), images.encode_png(real)),
               _example("photos/sharp_only", images.encode_png(sharp))]
    out = run_transform(deblur_cfg, records, names=("id", "image", "blur"), fixed_shape=False)
    seed, _ = preprocessing.example_seeds(tf.constant("scene/real"), deblur_cfg)
    y, x = (int(v) for v in preprocessing.crop_offset(sharp.shape[0], sharp.shape[1], seed, deblur_cfg))
    np.testing.assert_array_equal(_decode(out["scene/real"]["degraded"]), real[y:y + CROP, x:x + CROP])
    target, degraded = _decode(out["photos/sharp_only"]["target"]), _decode(out["photos/sharp_only"]["degraded"])
    assert not np.array_equal(degraded, target)
    assert _gradient_energy(degraded) < _gradient_energy(target)  # blurred here, not copied
