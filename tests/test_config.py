"""The one configuration object: presets (one JSON file each), overrides, JSON round trip, and every
setting checked when a Config is built."""
import json

import pytest

from config import PRESETS, Config, ConfigError, preset
from config.checks import check_local_run


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
    assert cfg.override({"train.warm_start": True}).fingerprint() == cfg.fingerprint()  # how a run starts
    assert cfg.checkpoint_root.endswith(cfg.pipeline_name)


@pytest.mark.parametrize("bad, message", [
    ({"task": "denoise"}, "task must be"),
    ({"data.layout": "imagenet"}, "data.layout"),
    ({"data.crop_size": 66}, "multiple of scale"),
    ({"loss.adversarial": "hinge"}, "loss.adversarial"),
    ({"train.lr_schedule": "foo"}, r"train.lr_schedule must be one of 'constant', 'step', 'linear'; got 'foo'"),
    ({"train.batch_size": 0}, "train.batch_size must be >= 1; got 0"),
    ({"train.batch_size": -4}, "train.batch_size must be >= 1; got -4"),
    ({"train.log_every": 0}, "train.log_every must be >= 1"),
    ({"train.lr_gen": 0.0}, "train.lr_gen must be > 0"),
    ({"data.train_ratio": 1.0}, "data.train_ratio must be < 1"),
    ({"data.blur_kernel_size": 16}, "data.blur_kernel_size must be odd"),
    ({"model.scale": 3}, "model.scale must be one of 2, 4, 8"),
    ({"loss.pixel": "huber"}, "loss.pixel must be one of"),
    ({"loss.perceptual_net": "resnet"}, "loss.perceptual_net"),
    ({"eval.min_ssim": 1.5}, "eval.min_ssim must be <= 1"),
    ({"serving.tile_size": 32, "serving.tile_overlap": 32}, "serving.tile_overlap 32 must be smaller"),
    ({"serving.max_concurrent_pixels": 0}, "serving.max_concurrent_pixels must be >= 1; got 0"),
    ({"serving.rest_read_timeout_s": 0}, "serving.rest_read_timeout_s must be > 0"),
    ({"serving.rest_backlog": 0}, "serving.rest_backlog must be >= 1"),
    ({"export.tile_size": 64, "export.tile_overlap": 64}, "export.tile_overlap 64 must be smaller"),
    ({"export.precision": "int8"}, "export.precision must be one of 'float32', 'bfloat16', 'float16'; got 'int8'"),
    ({"kubeflow.cron": "0 3 * * 0"}, "kubeflow.cron needs 6 fields"),
    ({"train.warmup_steps": 0, "train.gan_steps": 0}, "nothing would be trained"),
    ({"train.lr_schedule": "step", "train.lr_decay_steps": 0}, "train.lr_decay_steps"),
])
def test_invalid_settings_are_clear_errors(bad, message):
    with pytest.raises(ConfigError, match=message):
        preset("tiny").override(bad)


def test_values_of_the_wrong_type_are_refused_in_files_and_on_the_command_line(tmp_path):
    d = preset("tiny").to_dict()
    d["train"]["batch_size"] = "16"  # a JSON string where a number belongs
    with pytest.raises(ConfigError, match="train.batch_size must be an integer; got '16'"):
        Config.from_dict(d)
    with pytest.raises(ConfigError, match="train.gan_steps must be an integer; got 'lots'"):
        preset("tiny").override({"train.gan_steps": "lots"})
    with pytest.raises(ConfigError, match="train.augment must be a boolean"):
        preset("tiny").override({"train.augment": "maybe"})
    with pytest.raises(ConfigError, match="cannot read the configuration file"):
        Config.from_file(str(tmp_path / "missing.json"))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not a JSON configuration"):
        Config.from_file(str(tmp_path / "bad.json"))


def test_unknown_keys_are_rejected():
    with pytest.raises(ConfigError, match="unknown config key"):
        preset("tiny").override({"train.epochs": 3})
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) train.epochs"):
        Config.from_dict({**preset("tiny").to_dict(), "train": {"epochs": 3}})
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("esrgan")


def test_presets_are_data_files_loaded_through_from_dict():
    import os

    from config.presets import PRESET_DIR

    for name in PRESETS:
        with open(os.path.join(PRESET_DIR, f"{name}.json")) as f:
            d = json.load(f)
        assert d["name"] == name
        d.pop("tasks", None)
        d["data"]["root"] = preset(name).data.root
        assert Config.from_dict(d) == preset(name)
    with pytest.raises(ConfigError, match="is for task 'sr', not 'deblur'"):
        preset("srgan-celeba", task="deblur")


def test_a_local_run_needs_its_data_and_the_weights_of_its_perceptual_loss(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    check_local_run(preset("tiny"))  # the committed samples, no perceptual loss
    with pytest.raises(ConfigError, match="data.root is empty"):
        check_local_run(preset("srgan-celeba"))
    with pytest.raises(ConfigError, match="is not a directory"):
        check_local_run(preset("tiny").override({"data.root": str(tmp_path / "absent")}))
    perceptual = preset("srgan-celeba").override({"data.root": str(tmp_path)})
    with pytest.raises(ConfigError, match="loss.perceptual_net=vgg19: .*vgg19_weights_tf_dim_ordering_tf_kernels"):
        check_local_run(perceptual)
    check_local_run(perceptual.override({"train.gan_steps": 0}))  # the warm-up alone uses no VGG
