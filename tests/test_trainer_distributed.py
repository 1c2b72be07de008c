"""MirroredStrategy on CPU split into 2 logical devices computes the same step as one device, and a
whole training job (summaries, checkpoints, export) runs under it.

Runs in a subprocess: logical devices must be configured before TensorFlow initialises its devices,
which would otherwise leak into (and be impossible in) the other tests' process.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def _compare(task: str, data) -> dict:
    """Child process: one warm-up step and one GAN step (critic + generator) on the same batch, with
    the default strategy and with MirroredStrategy over 2 logical CPUs; losses and updated weights.
    Then a short train_and_export under MirroredStrategy."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from fixtures_data import fixture_config

    from models import train_data
    from models.gan_loop import GanTrainer

    # No batch norm anywhere (per-replica statistics differ): the SR generator without BN and, under
    # WGAN, an instance-norm critic; gp_weight 0 because the penalty samples random points per replica.
    cfg = fixture_config(task, **{"train.warmup_steps": 1, "train.gan_steps": 1, "train.disc_steps": 1,
                                  "loss.adversarial": "wgan-gp", "loss.gp_weight": 0.0})
    spec = train_data.feature_spec(data["transform_graph"])
    batch = train_data.fixed_batch(train_data.expand_files(data["train_files"]), spec, cfg.train.batch_size)
    result = {}
    for name, strategy in (("single", tf.distribute.get_strategy()),
                           ("mirrored", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))):
        trainer = GanTrainer(cfg, strategy)
        it = iter(strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors(batch).repeat()))
        losses = {**trainer.train_one_step(it), **trainer.train_one_step(it)}  # warm-up, then GAN
        result[name] = {"replicas": strategy.num_replicas_in_sync, "losses": losses,
                        "weights": {f"{m.name}/{w.name}": w.numpy().ravel().tolist()
                                    for m in (trainer.generator, trainer.discriminator) for w in m.weights}}

    # The whole job under MirroredStrategy: summaries, checkpoints and export of mirrored variables.
    from models.trainer import train_and_export

    run = cfg.override({"train.checkpoint_root": os.path.join(data["out"], "ckpt"), "train.log_every": 1})
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    model_dir = train_and_export(run, data["train_files"], data["eval_files"], data["transform_graph"],
                                 os.path.join(data["out"], "logs"), os.path.join(data["out"], "model"), strategy)
    restored = tf.saved_model.load(model_dir).signatures["restore"](images=tf.zeros([1, 9, 11, 3]))["images"]
    result["exported_shape"] = restored.shape.as_list()
    return result


@pytest.mark.slow
def test_mirrored_step_equals_single_device_step(transformed_sr, tmp_path):
    task, data = "sr", transformed_sr
    args = {"transform_graph": data.transform_graph, "train_files": data.train_files,
            "eval_files": data.eval_files, "out": str(tmp_path)}
    out = tmp_path / "result.json"
    subprocess.run([sys.executable, __file__, task, json.dumps(args), str(out)], check=True, cwd=HERE,
                   timeout=600)
    result = json.loads(out.read_text())
    single, mirrored = result["single"], result["mirrored"]
    assert (single["replicas"], mirrored["replicas"]) == (1, 2)
    assert result["exported_shape"] == [1, 36, 44, 3]
    assert set(single["losses"]) == set(mirrored["losses"]) >= {"pixel", "gen_total", "disc_total"}
    for k, v in single["losses"].items():
        assert mirrored["losses"][k] == pytest.approx(v, rel=1e-5, abs=1e-6), k
    # The GAN-step losses are computed after the warm-up update, so they already compare updated
    # weights. Updated weights directly: Adam's first steps move every weight by about +-lr whatever
    # the size of its gradient, so a gradient that is zero up to rounding (e.g. a conv bias right
    # before instance norm) can move either way on either side; all the others must agree to 1e-5.
    names = sorted(single["weights"])
    assert names == sorted(mirrored["weights"])
    a = np.concatenate([single["weights"][n] for n in names])
    b = np.concatenate([mirrored["weights"][n] for n in names])
    diff = np.abs(a - b)
    assert np.mean(diff > 1e-5) < 1e-3, f"{np.sum(diff > 1e-5)} of {diff.size} weights differ by more than 1e-5"
    assert diff.max() <= 4 * max(data.cfg.train.lr_gen, data.cfg.train.lr_disc)

if __name__ == "__main__":
    task, args, out_path = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    with open(out_path, "w") as f:
        json.dump(_compare(task, args), f)
