"""The GAN training loop: pixel-loss warm-up, then the adversarial phase, under a tf.distribute strategy.

Each training step is a `tf.function` around `tf.GradientTape`, run per replica with `strategy.run`.
Per-example losses are averaged over the *global* batch (`tf.nn.compute_average_loss`), so the
gradients the optimizer sums across replicas equal the single-device gradients of the same batch.

Phases (the global step counts generator updates, and alone decides the phase, so a resumed run
continues where it stopped):
  [0, warmup_steps)                       generator only, pixel loss (SRResNet-style pre-training)
  [warmup_steps, warmup_steps+gan_steps)  `disc_steps` discriminator (critic) updates on fresh batches,
                                          then one generator update with
                                          pixel_weight*pixel + perceptual_weight*perceptual
                                          + adversarial_weight*adversarial
Warm-up and GAN phase have separate generator optimizers (the papers start the GAN phase with a fresh
Adam), each with its own learning-rate schedule counted from the start of its phase.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from typing import Dict

import tensorflow as tf
import tf_keras as keras

from config import ConfigError
from config.errors import UserError

log = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError, UserError):
    """A loss became NaN or Inf: training stops and nothing is exported."""


# -- devices and precision ---------------------------------------------------------------------------

class GpuUnavailable(ConfigError):
    """GPUs were asked for (`train.num_gpus` >= 1, e.g. `kubeflow.trainer_gpus` on the cluster) and none
    is visible: the Trainer stops at start rather than spend a GPU node's reservation on its CPU."""


def make_strategy(cfg) -> tf.distribute.Strategy:
    """The strategy the GAN loop runs under:
    - TF_CONFIG naming several chief/worker tasks: MultiWorkerMirroredStrategy over the workers (each
      with all of its visible GPUs, or its CPU), see models/cluster.py;
    - more than one GPU (visible, or asked for with `train.num_gpus` > 1): MirroredStrategy over them;
    - else the default strategy (one GPU, or the CPU).
    `train.num_gpus` >= 1 with no GPU visible raises GpuUnavailable, unless `train.allow_cpu`."""
    from models import cluster

    gpus = tf.config.list_physical_devices("GPU")
    wanted = cfg.train.num_gpus
    if wanted and not gpus:
        if not cfg.train.allow_cpu:
            raise GpuUnavailable(
                f"train.num_gpus={wanted} but TensorFlow sees no GPU (CUDA_VISIBLE_DEVICES="
                f"{os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}, TensorFlow built with CUDA: "
                f"{tf.test.is_built_with_cuda()}); stopping before training. Set train.allow_cpu=true to "
                f"train on the CPU")
        log.warning("train.num_gpus=%d but no GPU is visible: training on the CPU (train.allow_cpu)", wanted)
        wanted = 0
    wanted = wanted or len(gpus)
    if wanted > len(gpus) and wanted > 1:
        raise ValueError(f"train.num_gpus={wanted} but only {len(gpus)} GPU(s) are visible")
    resolver = cluster.cluster_resolver()
    if resolver is not None:
        if wanted < len(gpus):  # each worker trains on the GPUs it was given, all of them
            raise ValueError(f"train.num_gpus={wanted} but this worker sees {len(gpus)} GPUs; multi-worker "
                             f"training uses every visible GPU (set CUDA_VISIBLE_DEVICES)")
        return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
    if wanted > 1:
        return tf.distribute.MirroredStrategy([f"/gpu:{i}" for i in range(wanted)])
    return tf.distribute.get_strategy()


def precision_policy(cfg) -> str:
    if not cfg.train.mixed_precision:
        return "float32"
    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"


@contextlib.contextmanager
def _global_policy(name: str):
    """Layers take the policy when built; restore the previous one afterwards (it is process-global)."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


# -- learning rates ----------------------------------------------------------------------------------

@keras.utils.register_keras_serializable("gan_restoration")
class PhaseSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """`constant`; `step`: halve every `decay_steps`; `linear`: hold until `decay_steps`, then go
    linearly to 0 at `total_steps` (DeblurGAN). Steps are phase steps: optimizer updates divided by
    `updates_per_step` (the critic makes `disc_steps` updates per generator step)."""

    def __init__(self, base: float, kind: str, decay_steps: int, total_steps: int, updates_per_step: int = 1):
        self.base, self.kind = float(base), kind
        self.decay_steps, self.total_steps = int(decay_steps), int(total_steps)
        self.updates_per_step = max(1, int(updates_per_step))

    def __call__(self, step):
        s = tf.cast(step // self.updates_per_step, tf.float32)
        base = tf.constant(self.base, tf.float32)
        if self.kind == "step" and self.decay_steps > 0:
            return base * tf.pow(0.5, tf.floor(s / self.decay_steps))
        if self.kind == "linear":
            span = float(max(self.total_steps - self.decay_steps, 1))
            return base * (1.0 - tf.clip_by_value((s - self.decay_steps) / span, 0.0, 1.0))
        return base

    def get_config(self):
        return {"base": self.base, "kind": self.kind, "decay_steps": self.decay_steps,
                "total_steps": self.total_steps, "updates_per_step": self.updates_per_step}


def _adam(cfg, base_lr: float, total_steps: int, updates_per_step: int, policy: str, name: str):
    t = cfg.train
    schedule = PhaseSchedule(base_lr, t.lr_schedule, t.lr_decay_steps, total_steps, updates_per_step)
    # global_clipnorm clips after the cross-replica sum: the norm of the global-batch gradient.
    opt = keras.optimizers.Adam(schedule, beta_1=t.adam_beta1, beta_2=t.adam_beta2,
                                global_clipnorm=t.clip_norm or None, name=name)
    if policy == "mixed_float16":
        opt = keras.mixed_precision.LossScaleOptimizer(opt)
    return opt


# -- the trainer -------------------------------------------------------------------------------------

class GanTrainer:
    """Networks, optimizers, checkpointable state and the distributed train steps of one run."""

    def __init__(self, cfg, strategy: tf.distribute.Strategy | None = None):
        from models import losses, networks

        self.cfg = cfg
        self.strategy = strategy or make_strategy(cfg)
        self.global_batch = cfg.train.batch_size
        if self.global_batch % self.strategy.num_replicas_in_sync:
            raise ValueError(f"train.batch_size {self.global_batch} does not split over "
                             f"{self.strategy.num_replicas_in_sync} replicas")
        t = cfg.train
        self.policy = precision_policy(cfg)
        self.total_steps = t.warmup_steps + t.gan_steps
        # Counts generator updates; decides the phase. Host-side, checkpointed.
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")

        self._losses = losses
        # Before anything is built or trained: a perceptual loss without its VGG weights file fails here.
        losses.check_perceptual_weights(cfg)

        keras.utils.set_random_seed(t.seed)  # same initial weights on every run of this config
        with self.strategy.scope(), _global_policy(self.policy):
            self.generator = networks.build_generator(cfg)
            self.discriminator = networks.build_discriminator(cfg) if t.gan_steps > 0 else None
            self.perceptual = losses.PerceptualLoss(cfg) if losses.perceptual_enabled(cfg) and t.gan_steps else None
            self.warmup_opt = _adam(cfg, t.lr_gen, t.warmup_steps, 1, self.policy, "warmup_adam")
            self.gen_opt = _adam(cfg, t.lr_gen_gan or t.lr_gen, t.gan_steps, 1, self.policy, "gen_adam")
            self.disc_opt = _adam(cfg, t.lr_disc, t.gan_steps, t.disc_steps, self.policy, "disc_adam")
            # Slots exist before a restore, so the checkpoint restores them eagerly.
            for opt, model in ((self.warmup_opt, self.generator), (self.gen_opt, self.generator),
                               (self.disc_opt, self.discriminator)):
                if model is not None:
                    _inner(opt).build(model.trainable_variables)
        state = dict(step=self.step, generator=self.generator, warmup_opt=self.warmup_opt, gen_opt=self.gen_opt)
        if self.discriminator is not None:
            state.update(discriminator=self.discriminator, disc_opt=self.disc_opt)
        self.checkpoint = tf.train.Checkpoint(**state)

        self.warmup_step = tf.function(self._distributed(self._warmup_replica))
        self.disc_step = tf.function(self._distributed(self._disc_replica))
        self.gen_step = tf.function(self._distributed(self._gen_replica))

    # -- per-replica steps ---------------------------------------------------------------------------
    def _avg(self, per_example):
        """Per-example losses [local batch] -> this replica's share of the global-batch mean."""
        return tf.nn.compute_average_loss(tf.cast(per_example, tf.float32), global_batch_size=self.global_batch)

    def _apply(self, opt, tape, loss, variables):
        scaled = opt.get_scaled_loss(loss) if isinstance(opt, keras.mixed_precision.LossScaleOptimizer) else loss
        grads = tape.gradient(scaled, variables)
        if scaled is not loss:
            grads = opt.get_unscaled_gradients(grads)
        opt.apply_gradients(zip(grads, variables, strict=True))

    def _warmup_replica(self, degraded, target):
        g = self.generator
        with tf.GradientTape() as tape:
            output = tf.cast(g(degraded, training=True), tf.float32)
            # Unweighted: the GAN-phase pixel weight may be 0 (perceptual-only SRGAN).
            pixel = self._avg(self._losses.pixel_loss(self.cfg, target, output))
        self._apply(self.warmup_opt, tape, pixel, g.trainable_variables)
        return {"pixel": pixel}

    def _disc_replica(self, degraded, target):
        d = self.discriminator
        fake = tf.cast(self.generator(degraded, training=True), tf.float32)
        with tf.GradientTape() as tape:
            terms = self._losses.discriminator_loss(self.cfg, d, target, fake)
            out = {f"disc_{k}": self._avg(terms[k]) for k in ("adversarial", "gradient_penalty", "total")
                   if k in terms}
        self._apply(self.disc_opt, tape, out["disc_total"], d.trainable_variables)
        return out

    def _gen_replica(self, degraded, target):
        g, d = self.generator, self.discriminator
        with tf.GradientTape() as tape:
            output = tf.cast(g(degraded, training=True), tf.float32)
            fake_logits = d(output, training=True)
            # The relativistic loss needs the real logits too; they carry no generator gradient.
            real_logits = tf.stop_gradient(d(target, training=True)) if self.cfg.loss.adversarial == "ragan" else None
            terms = self._losses.generator_loss(self.cfg, target, output, fake_logits, real_logits, self.perceptual)
            out = {f"gen_{k}": self._avg(v) for k, v in terms.items()}  # weighted terms
        self._apply(self.gen_opt, tape, out["gen_total"], g.trainable_variables)
        return out

    def _distributed(self, replica_fn):
        strategy = self.strategy

        def step(batch):
            per_replica = strategy.run(replica_fn, args=batch)
            return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in per_replica.items()}
        return step

    # -- one generator step of the current phase -----------------------------------------------------
    def phase(self, step: int | None = None) -> str:
        step = int(self.step.numpy()) if step is None else step
        return "warmup" if step < self.cfg.train.warmup_steps or not self.cfg.train.gan_steps else "gan"

    def train_one_step(self, iterator) -> Dict[str, float]:
        """Run the current phase's updates for one generator step; returns the losses (host floats).

        Raises TrainingDiverged (and leaves the step counter alone) when a loss is NaN or Inf.
        """
        step = int(self.step.numpy())
        if self.phase(step) == "warmup":
            values = self.warmup_step(next(iterator))
        else:
            values = {}
            for _ in range(self.cfg.train.disc_steps):  # a fresh batch for every critic update
                values.update(self.disc_step(next(iterator)))
            values.update(self.gen_step(next(iterator)))
        values = {k: float(v) for k, v in values.items()}
        bad = {k: v for k, v in values.items() if not math.isfinite(v)}
        if bad:
            raise TrainingDiverged(
                f"loss {', '.join(f'{k}={v}' for k, v in sorted(bad.items()))} at step {step + 1} "
                f"({self.phase(step)} phase); stopping, nothing exported. Lower the learning rate or "
                f"enable train.clip_norm.")
        self.step.assign_add(1)
        return values

    def learning_rates(self) -> Dict[str, float]:
        if self.phase() == "warmup":
            return {"lr/generator": _current_lr(self.warmup_opt)}
        return {"lr/generator": _current_lr(self.gen_opt), "lr/discriminator": _current_lr(self.disc_opt)}


def _inner(opt):
    return opt.inner_optimizer if isinstance(opt, keras.mixed_precision.LossScaleOptimizer) else opt


def _current_lr(opt) -> float:
    inner = _inner(opt)
    lr = inner.learning_rate
    if isinstance(lr, keras.optimizers.schedules.LearningRateSchedule):
        lr = lr(tf.convert_to_tensor(inner.iterations))
    # convert_to_tensor: under MirroredStrategy these are mirrored variables.
    return float(tf.convert_to_tensor(lr))


def format_eta(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


class Progress:
    """steps/s over the last logging window, and the ETA at that rate."""

    def __init__(self, start_step: int, total: int):
        self.total = total
        self.last_step, self.last_time = start_step, time.monotonic()

    def update(self, step: int):
        now = time.monotonic()
        rate = (step - self.last_step) / max(now - self.last_time, 1e-9)
        self.last_step, self.last_time = step, now
        return rate, (self.total - step) / rate if rate > 0 else float("inf")
