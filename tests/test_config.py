"""The one configuration object: presets, overrides, JSON round trip, validation."""
import pytest

from pipeline.config import PRESETS, Config, preset


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip_through_json(name):
    cfg = preset(name)
    again = Config.from_json(cfg.to_json())
    assert again == cfg
    assert again.fingerprint() == cfg.fingerprint()


def test_tiny_serves_both_tasks():
    sr, deblur = preset("tiny", task="sr"), preset("tiny", task="deblur")
    assert (sr.task, sr.scale, sr.model_name) == ("sr", 4, "srgan")
    assert (deblur.task, deblur.scale, deblur.model_name) == ("deblur", 1, "deblurgan")
    assert sr.pipeline_name != deblur.pipeline_name


def test_paper_presets_carry_the_papers_settings():
    sr = preset("srgan-celeba")
    assert (sr.model.num_blocks, sr.model.channels, sr.data.crop_size) == (16, 64, 128)
    assert (sr.loss.perceptual_net, sr.loss.perceptual_layer, sr.loss.adversarial_weight) == (
        "vgg19", "block5_conv4", 1e-3)
    db = preset("deblurgan-gopro")
    assert (db.loss.adversarial, db.loss.gp_weight, db.loss.perceptual_weight, db.train.disc_steps) == (
        "wgan-gp", 10.0, 100.0, 5)
    assert (db.loss.perceptual_net, db.loss.perceptual_layer, db.data.crop_size) == ("vgg16", "block3_conv3", 256)


def test_overrides_coerce_command_line_strings():
    cfg = preset("tiny").override({"train.gan_steps": "7", "train.augment": "false", "eval.min_psnr": "21.5",
                                   "eval.min_gain_over_baseline": "0.5", "task": "deblur"})
    assert cfg.train.gan_steps == 7 and cfg.train.augment is False
    assert cfg.eval.min_psnr == 21.5 and cfg.eval.min_gain_over_baseline == 0.5 and cfg.task == "deblur"


def test_fingerprint_ignores_logging_cadence_but_not_training_settings():
    cfg = preset("tiny")
    assert cfg.override({"train.log_every": 3}).fingerprint() == cfg.fingerprint()
    assert cfg.override({"train.lr_gen": 0.5}).fingerprint() != cfg.fingerprint()
    assert cfg.checkpoint_dir.endswith(cfg.fingerprint())


@pytest.mark.parametrize("bad, message", [
    ({"task": "denoise"}, "task must be"),
    ({"data.layout": "imagenet"}, "data.layout"),
    ({"data.crop_size": 66}, "multiple of scale"),
    ({"loss.adversarial": "hinge"}, "loss.adversarial"),
])
def test_invalid_settings_are_clear_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        preset("tiny").override(bad)


def test_unknown_keys_are_rejected():
    with pytest.raises(KeyError, match="unknown config key"):
        preset("tiny").override({"train.epochs": 3})
    with pytest.raises(KeyError, match="unknown preset"):
        preset("esrgan")
