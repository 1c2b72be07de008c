"""The shipped pretrained models (pretrained/<model>/<version>/, TF Serving's layout): each loads, restores
a real photograph at the right size, is served over gRPC and REST by `gan-restore serve` and by
`gan-restore predict --local`, and can warm-start a training run of its own configuration."""
import os

import numpy as np
import pytest
import sample_images

from config import REPO_ROOT, Config
from contracts import serving_layout, signatures
from models import images

PRETRAINED = os.path.join(REPO_ROOT, "pretrained")
MODELS = {"srgan": 4, "deblurgan": 1}  # served name -> output/input size ratio


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_shipped_model_is_a_servable_version_with_a_model_card(name):
    base = os.path.join(PRETRAINED, name)
    assert serving_layout.versions(base), f"no version under {base}"
    version = serving_layout.latest_version_dir(base)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(version) for f in fs)
    assert size <= 25 * 2**20, f"{version}: {size / 2**20:.1f} MB"
    card = open(os.path.join(base, "MODEL_CARD.md")).read()
    for heading in ("## Data", "## Licence", "## Recipe", "## Metrics"):
        assert heading in card, heading


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_shipped_model_restores_and_warm_starts_its_own_generator(name):
    import tensorflow as tf

    from models.networks import build_generator
    from models.restorer import stored_config
    from models.warm_start import load_generator

    version = serving_layout.latest_version_dir(os.path.join(PRETRAINED, name))
    cfg = stored_config(version)
    assert isinstance(cfg, Config) and cfg.scale == MODELS[name]
    photo = sample_images.rgb("coffee_06")[:60, :52]
    restore = tf.saved_model.load(version).signatures[signatures.RESTORE]
    x = tf.constant(images.uint8_to_float(photo)[None])
    served = restore(**{signatures.IMAGES: x})[signatures.IMAGES].numpy()
    assert served.shape == (1, 60 * cfg.scale, 52 * cfg.scale, 3)
    generator = build_generator(cfg)
    load_generator(generator, cfg, version)  # what train.warm_start_from=pretrained/<name> does
    keras_out = np.clip(generator(x, training=False).numpy(), 0, 1)
    if keras_out.shape == served.shape:  # the deblur generator pads to a multiple of 4 inside the export
        assert np.abs(keras_out - served).max() <= 2e-3


@pytest.mark.slow
def test_the_shipped_models_are_served_over_grpc_and_rest_and_by_predict_local(tmp_path):
    from cli import main as cli
    from serving.client import GrpcClient, RestClient
    from serving.server_process import ServerProcess

    server = ServerProcess(PRETRAINED, str(tmp_path / "server.log"))
    try:
        for name, scale in MODELS.items():
            server.wait_available(name, int(os.path.basename(serving_layout.latest_version_dir(
                os.path.join(PRETRAINED, name)))))
            png = images.encode_png(sample_images.rgb("rocket_07")[:40, :48])
            with GrpcClient(server.grpc_target, name) as g:
                out = images.read_rgb8(g.predict_encoded([png]).images[0])
            assert out.shape == (40 * scale, 48 * scale, 3)
            rest = RestClient(server.rest_url, name).predict_encoded([png]).images[0]
            np.testing.assert_array_equal(images.read_rgb8(rest), out)
    finally:
        assert server.stop() == 0
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.png").write_bytes(images.encode_png(sample_images.rgb("chelsea_05")[:32, :40]))
    assert cli.main(["predict", str(src), "-o", str(tmp_path / "out"), "--local",
                     os.path.join(PRETRAINED, "srgan")]) == 0
    assert images.read_rgb8(str(tmp_path / "out" / "a.png")).shape == (128, 160, 3)
