"""MirroredStrategy on CPU split into 2 logical devices computes the same step as one device, and a
whole training job (summaries, checkpoints, export) runs under it.

Runs in a subprocess: logical devices must be configured before TensorFlow initialises its devices,
which would otherwise leak into (and be impossible in) the other tests' process.
"""
import json
import os
import subprocess
import sys

import pytest
from distributed_steps import assert_same_step

HERE = os.path.dirname(os.path.abspath(__file__))


def _compare(task: str, data) -> dict:
    """Child process: one warm-up step and one GAN step on the same batch, with the default strategy and
    with MirroredStrategy over 2 logical CPUs; losses and updated weights. Then a short
    train_and_export under MirroredStrategy."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from distributed_steps import fixed_global_batch, one_step_each_phase, step_config

    cfg = step_config(task)
    batch = fixed_global_batch(cfg, data)
    result = {name: one_step_each_phase(cfg, strategy, batch)
              for name, strategy in (("single", tf.distribute.get_strategy()),
                                     ("mirrored", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])))}

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
    assert_same_step(single, mirrored, data.cfg)


if __name__ == "__main__":
    task, args, out_path = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    with open(out_path, "w") as f:
        json.dump(_compare(task, args), f)
