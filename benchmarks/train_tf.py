"""TF side of the training benchmark: one SRGAN step of the real training loop (models/gan_loop.py
`GanTrainer.train_one_step`: a discriminator update, then a generator update with VGG19 content loss
+ adversarial loss), srgan-celeba preset, batch 16 of 96x96 HR crops (24x24 LR).

The VGG19 weights are the ImageNet file when present (~/.keras/models), else random: the speed is
the same, and the benchmark says which it used.
"""
from __future__ import annotations

import argparse

from benchmarks import common


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_step_arguments(p)
    args = p.parse_args(argv)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from benchmarks import srresnet_arch
    from models import losses
    from models.gan_loop import GanTrainer

    cfg = srresnet_arch.bench_config(**{"data.crop_size": args.crop, "train.batch_size": args.batch,
                                        "train.warmup_steps": 0, "train.gan_steps": 10**6})
    try:
        losses.check_perceptual_weights(cfg)
        vgg = "ImageNet weights"
    except (FileNotFoundError, ValueError):
        cfg = cfg.override({"loss.allow_random_vgg": True})
        vgg = "random weights (ImageNet file absent; same speed)"
    trainer = GanTrainer(cfg)
    hr = tf.random.stateless_uniform([args.batch, args.crop, args.crop, 3], seed=[1, 2])
    lr = tf.random.stateless_uniform([args.batch, args.crop // cfg.scale, args.crop // cfg.scale, 3], seed=[3, 4])

    def forever():
        while True:
            yield lr, hr

    it = forever()
    stats = common.time_calls(lambda: trainer.train_one_step(it), args.warmup, args.runs)
    rec = {"bench": "train", "side": "tf", "batch": args.batch, "crop": args.crop, "threads": args.threads,
           "params_g": int(trainer.generator.count_params()), "params_d": int(trainer.discriminator.count_params()),
           "vgg": vgg, "phase": trainer.phase(), "load": common.load_average(), **stats}
    print(f"tf SRGAN step batch {args.batch} {args.crop}x{args.crop}: {stats['median_s']:.2f} s/step "
          f"(median of {args.runs}), {args.batch / stats['median_s']:.2f} images/s, VGG19 {vgg}; load {rec['load']}",
          flush=True)
    common.emit(rec)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
