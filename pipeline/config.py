"""The one typed configuration of a run, and its named presets.

Everything (pipeline wiring, components, preprocessing_fn, run_fn, evaluator, serving, Kubeflow)
reads its settings from a `Config`; nothing hides a constant of its own. A Config travels through
TFX as JSON (`custom_config={"config": cfg.to_json()}`) and is rebuilt with `Config.from_json`.

Presets: `tiny` (tests and demo: minutes on 2 CPU cores), `srgan-celeba` (the SRGAN paper's
SRResNet/SRGAN recipe on CelebA 128 crops), `deblurgan-gopro` (the DeblurGAN paper on GOPRO 256
crops). Overrides use dotted keys: `cfg.override({"train.gan_steps": 10})`.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_DATA = os.path.join(REPO_ROOT, "data", "samples")

TASKS = ("sr", "deblur")
LAYOUTS = ("folder", "celeba", "gopro")


@dataclass
class DataConfig:
    # Where the images are and how they are laid out: "folder" (any folder of images, recursive),
    # "celeba" (img_align_celeba/ + optional list_eval_partition.txt), "gopro"
    # ({train,test}/<scene>/{blur,sharp}/).
    root: str = ""
    layout: str = "folder"
    # Splits when the dataset defines none: deterministic by a hash of the image id.
    train_ratio: float = 0.8
    # Images below this size (after ingestion) are rejected; 0 means "the crop size".
    min_size: int = 0
    # Decompression-bomb guard: images with more pixels are rejected unread.
    max_pixels: int = 40_000_000
    # HR crop (SR) or sharp/blur crop (deblur) taken by Transform. 128 for CelebA as in the classic
    # recipe, 256 for GOPRO as in DeblurGAN.
    crop_size: int = 128
    # Deblurring on sharp-only data: synthetic camera-trajectory motion blur (DeblurGAN paper).
    blur_kernel_size: int = 31
    blur_seed: int = 0
    # Exposure fractions of the camera trajectory drawn for the synthetic kernels: DeblurGAN's 1/100,
    # 1/10, 1/2 and 1, keeping those >= this. 0.1 (default) drops the 1/100 draw, a quarter of
    # DeblurGAN's kernels, which spans ~0.1 pixel and does not blur at all (15 px kernels: the
    # "blurred" tile is ~63 dB from the sharp one); 0 reproduces DeblurGAN's draws.
    blur_min_exposure: float = 0.1
    # Transform's full-pass analyzer: the training split's per-channel mean (`target_mean` in every
    # transformed example), for models that normalise their input by it. Off: none of ours does (both
    # generators add a skip from the input), and its analysis pass reads and decodes every train
    # image again, a cost measured in docs/benchmarks.md (data path).
    dataset_mean: bool = False


@dataclass
class ModelConfig:
    # SR generator (SRResNet)
    scale: int = 4
    num_blocks: int = 16
    channels: int = 64
    batch_norm: bool = True
    icnr_init: bool = True
    residual_bicubic: bool = False  # output = bicubic(LR) + generator(LR)
    # SR discriminator (SRGAN): first conv width; doubles every two layers to 8x.
    disc_channels: int = 64
    disc_dense: int = 1024
    # Deblur generator (DeblurGAN ResNet) and critic (PatchGAN)
    deblur_channels: int = 64
    deblur_blocks: int = 9
    deblur_dropout: float = 0.5
    critic_channels: int = 64
    critic_layers: int = 3  # 3 -> the 70x70 PatchGAN


@dataclass
class LossConfig:
    pixel: str = "mse"  # "mse" | "l1"
    pixel_weight: float = 1.0
    # Perceptual loss on VGG features ("" disables it). SRGAN: vgg19/block5_conv4 with features
    # divided by 12.75 (the paper's 1/12.75 rescaling); DeblurGAN: vgg16/block3_conv3.
    perceptual_net: str = "vgg19"
    perceptual_layer: str = "block5_conv4"
    perceptual_weight: float = 0.006  # (1/12.75)^2, the paper's rescaling on squared features
    # Adversarial: "bce" (SRGAN), "wgan-gp" (DeblurGAN), "ragan" (ESRGAN relativistic average).
    adversarial: str = "bce"
    adversarial_weight: float = 1e-3
    gp_weight: float = 10.0
    # Keras weights file for the VGG: an explicit path, else the standard Keras file name looked up
    # in ~/.keras/models (and $KERAS_HOME/models). A missing file is an error at start.
    vgg_weights: str = ""
    # Test-only switch: random VGG weights. Never set by presets or the CLI.
    allow_random_vgg: bool = False


@dataclass
class TrainConfig:
    batch_size: int = 16
    warmup_steps: int = 1000  # pixel-loss generator steps before the adversarial phase
    gan_steps: int = 1000  # adversarial generator steps
    disc_steps: int = 1  # discriminator (critic) steps per generator step; 5 for WGAN-GP
    lr_gen: float = 1e-4
    lr_gen_gan: float = 0.0  # generator lr in the adversarial phase (fresh Adam); 0 = lr_gen
    lr_disc: float = 1e-4
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    lr_schedule: str = "constant"  # "constant" | "step" (halve at lr_decay_steps) | "linear" (to 0)
    lr_decay_steps: int = 0
    clip_norm: float = 0.0  # global-norm gradient clipping; 0 disables
    mixed_precision: bool = False  # float16 on GPU, bfloat16 on CPU where supported
    augment: bool = True  # random flips + small colour jitter (classic CelebA SRGAN recipe)
    augment_rotate: bool = False  # with augment: also random 90-degree turns (not for aligned faces)
    # Random square patches of this many target pixels, aligned to the input (LR) grid, cut from each
    # crop in the input pipeline (SRGAN trains on random 96x96 HR patches); 0, or >= data.crop_size:
    # the whole crop. The discriminator is built for this size.
    patch_size: int = 0
    shuffle_buffer: int = 1024
    seed: int = 0
    checkpoint_every: int = 200
    log_every: int = 50  # progress line (steps/s, ETA) and TensorBoard scalars
    image_every: int = 200  # TensorBoard image grid (LR | bicubic | output | HR)
    # Checkpoints outlive a failed execution: <checkpoint_root>/<pipeline>/<config hash>/.
    # Empty: <pipeline_root>/checkpoints.
    checkpoint_root: str = ""
    # Devices: 0 = all GPUs present (MirroredStrategy for >1), CPU when there are none.
    num_gpus: int = 0


@dataclass
class EvalConfig:
    # Gate: absolute lower bounds on the eval split (Y channel, published protocol) ...
    min_psnr: float = 0.0
    min_ssim: float = 0.0
    # ... and no regression against the latest blessed model beyond these tolerances.
    max_psnr_drop: float = 0.1
    max_ssim_drop: float = 0.005
    # Require beating the baseline (bicubic for SR, the blurred input for deblur) by this much (dB);
    # None disables that check.
    min_gain_over_baseline: float | None = None
    max_images: int = 100  # eval images in the report and metrics
    report_images: int = 4  # rows in the picture grid


@dataclass
class ServingConfig:
    model_name: str = ""  # default: "srgan" / "deblurgan" by task
    serving_base: str = ""  # Pusher target: <serving_base>/<model_name>/<version>/; default under the run root
    grpc_port: int = 8500
    rest_port: int = 8501
    max_pixels: int = 16_000_000  # request image size bound (pixels)
    max_message_mb: int = 256
    tile_size: int = 0  # 0: no tiling; otherwise tile edge in input pixels
    tile_overlap: int = 32  # 16 leaves visible seams (17/255) with SRResNet; 32 gives <= 1/255
    timeout_s: float = 60.0
    retries: int = 3
    # Local server (serving/local_server.py): model directory poll period (TF Serving's
    # --file_system_poll_wait_seconds), request threads per protocol, grace for in-flight requests.
    poll_seconds: float = 1.0
    server_threads: int = 8
    shutdown_grace_s: float = 30.0


@dataclass
class KubeflowConfig:
    image: str = "ghcr.io/example/gan-restoration:0.1.0"
    pipeline_root: str = "gs://your-bucket/gan-restoration"
    # The cluster's data and serving locations (object storage, like pipeline_root). Empty: the
    # image folders under <pipeline_root>/data, pushed models under <pipeline_root>/serving.
    data_root: str = ""
    serving_base: str = ""
    output_file: str = ""  # default: <name>.yaml
    trainer_gpus: int = 1
    trainer_cpu: float = 8.0
    trainer_memory: str = "32G"
    component_cpu: float = 2.0
    component_memory: str = "8G"
    # Beam for the data components on the cluster (Dataflow / Flink / Spark portable runner).
    beam_args: tuple = ("--runner=DirectRunner", "--direct_running_mode=multi_processing",
                        "--direct_num_workers=0")
    # Scheduled retraining
    host: str = ""
    experiment: str = "gan-restoration"
    cron: str = "0 0 3 * * 0"  # KFP cron has seconds: every Sunday 03:00
    # Evaluator baseline on open-source KFP (no Resolver nodes there): the model currently pushed
    # to the serving directory.
    baseline_from_serving_dir: bool = True


@dataclass
class Config:
    name: str = "tiny"  # preset name; also the default pipeline name suffix
    task: str = "sr"  # "sr" | "deblur"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    serving: ServingConfig = field(default_factory=ServingConfig)
    kubeflow: KubeflowConfig = field(default_factory=KubeflowConfig)
    # Where a local run writes: pipeline root (artifacts), ML Metadata sqlite, TensorBoard logs.
    run_root: str = os.path.join(REPO_ROOT, "runs")
    enable_cache: bool = True
    beam_args: tuple = ("--direct_running_mode=multi_processing", "--direct_num_workers=0")

    # -- derived names ---------------------------------------------------------------------------
    @property
    def pipeline_name(self) -> str:
        return f"gan-restoration-{self.task}-{self.name}"

    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.run_root, self.pipeline_name)

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.pipeline_root, "metadata.sqlite")

    @property
    def model_name(self) -> str:
        return self.serving.model_name or ("srgan" if self.task == "sr" else "deblurgan")

    @property
    def serving_dir(self) -> str:
        """<serving base>/<model name>: TF Serving's base path for this model (versions below)."""
        base = self.serving.serving_base or os.path.join(self.run_root, "serving")
        return os.path.join(base, self.model_name)

    @property
    def scale(self) -> int:
        """Output/input size ratio: the SR scale, 1 for deblurring."""
        return self.model.scale if self.task == "sr" else 1

    @property
    def train_patch(self) -> int:
        """Target (HR / sharp) size of the training pairs and of the discriminator's input."""
        p = self.train.patch_size
        return p if 0 < p < self.data.crop_size else self.data.crop_size

    @property
    def checkpoint_dir(self) -> str:
        root = self.train.checkpoint_root or os.path.join(self.pipeline_root, "checkpoints")
        return os.path.join(root, self.pipeline_name, self.fingerprint())

    def fingerprint(self) -> str:
        """Hash of what determines a training run (data, model, loss, train); keys checkpoints."""
        import hashlib

        d = self.to_dict()
        keep = {k: d[k] for k in ("task", "data", "model", "loss", "train")}
        keep["train"] = {k: v for k, v in keep["train"].items()
                         if k not in ("checkpoint_root", "log_every", "image_every", "checkpoint_every")}
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:12]

    def view(self, *keep: str) -> Config:
        """A copy that keeps only the named sections or dotted keys ("data", "model.scale") and the
        run identity (name, task, run_root); everything else is reset to the dataclass defaults.

        Components get the view of what they read, so TFX's cache key (which covers the config) changes
        only when their own settings do: a new eval threshold re-runs the Evaluator, not ExampleGen.
        A component must not read settings outside its view (they hold defaults, not the run's values).
        """
        d, base = self.to_dict(), Config().to_dict()
        out = {k: d[k] for k in ("name", "task", "run_root")}
        for k, v in base.items():
            out.setdefault(k, v)
        for key in keep:
            section, _, field_name = key.partition(".")
            if field_name:
                out[section] = dict(out[section])
                out[section][field_name] = d[section][field_name]
            else:
                out[section] = d[section]
        return Config.from_dict(out)

    # -- (de)serialisation -------------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> Config:
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name not in d:
                continue
            v = d[f.name]
            sub = _SECTIONS.get(f.name)
            if sub is not None:
                v = _build(sub, v)
            elif isinstance(v, list):
                v = tuple(v)
            kwargs[f.name] = v
        cfg = cls(**kwargs)
        cfg.validate()
        return cfg

    @classmethod
    def from_json(cls, s: str) -> Config:
        return cls.from_dict(json.loads(s))

    def override(self, overrides: Dict[str, Any]) -> Config:
        """A copy with dotted-key overrides applied ("train.gan_steps": 10, "task": "deblur")."""
        d = self.to_dict()
        for key, value in overrides.items():
            node = d
            parts = key.split(".")
            for p in parts[:-1]:
                if p not in node or not isinstance(node[p], dict):
                    raise KeyError(f"unknown config section {p!r} in {key!r}")
                node = node[p]
            if parts[-1] not in node:
                raise KeyError(f"unknown config key {key!r}")
            old = node[parts[-1]]
            node[parts[-1]] = _coerce(value, old, key)
        return Config.from_dict(d)

    def validate(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.data.layout not in LAYOUTS:
            raise ValueError(f"data.layout must be one of {LAYOUTS}, got {self.data.layout!r}")
        if self.task == "sr" and self.data.crop_size % self.model.scale:
            raise ValueError(f"data.crop_size {self.data.crop_size} is not a multiple of scale {self.model.scale}")
        if self.task == "sr" and self.train_patch % self.model.scale:
            raise ValueError(f"train.patch_size {self.train.patch_size} is not a multiple of scale {self.model.scale}")
        if self.model.scale not in (2, 4, 8):
            raise ValueError(f"model.scale must be 2, 4 or 8, got {self.model.scale}")
        if not 0.0 <= self.data.blur_min_exposure <= 1.0:
            raise ValueError(f"data.blur_min_exposure must be in [0, 1], got {self.data.blur_min_exposure}")
        if self.loss.adversarial not in ("bce", "wgan-gp", "ragan"):
            raise ValueError(f"loss.adversarial must be bce, wgan-gp or ragan, got {self.loss.adversarial!r}")
        if self.loss.pixel not in ("mse", "l1"):
            raise ValueError(f"loss.pixel must be mse or l1, got {self.loss.pixel!r}")


_SECTIONS = {"data": DataConfig, "model": ModelConfig, "loss": LossConfig, "train": TrainConfig,
             "eval": EvalConfig, "serving": ServingConfig, "kubeflow": KubeflowConfig}


def _build(cls, d):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise KeyError(f"unknown keys for {cls.__name__}: {sorted(unknown)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def _coerce(value, old, key):
    """Command-line strings become the type of the value they replace."""
    if not isinstance(value, str) or isinstance(old, str):
        return value
    if isinstance(old, bool):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{key}: expected a boolean, got {value!r}")
    if isinstance(old, int):
        return int(value)
    if isinstance(old, float) or old is None:
        return None if value.lower() == "none" else float(value)
    if isinstance(old, (tuple, list)):
        return tuple(v for v in value.split(",") if v)
    return value


# -- presets ---------------------------------------------------------------------------------------

def _tiny(task: str) -> Config:
    """Tests and the demo: a small SRResNet / DeblurGAN that learns something in minutes on 2 cores.

    Measured on the 65 sample tiles (50 train / 15 eval), PSNR-Y gain over bicubic on the eval split:
    the whole 128 tile (not a 64 centre crop: 4x the data; with it the model overfits, +0.3 dB at best)
    cut into random 64 patches with all 8 orientations: +1.3 dB after 2500 warm-up steps (flips only:
    +1.0 dB). The adversarial weight is relative to an MSE in [0, 1] units (~0.005 here), not to the
    paper's VGG loss: 1e-3 makes the BCE term ~30% of the total and costs 0.5 dB in 200 steps; 1e-4
    (~7%) keeps the GAN phase real but mild (+0.15 dB over 300 steps at lr 1e-4).

    Deblur (PSNR-Y gain over the blurred input, 15 eval tiles): the generator's zero tail makes the
    untrained model its input (a Glorot tail: 15.4 vs 37.3 dB). Blur exposures >= 1/2 only: with
    DeblurGAN's 1/100 draw two eval tiles are 61/66 dB "blurred" and any change to them costs 20 dB
    there (-3 dB on the mean); with >= 1/10 the four 1/10 tiles (42-45 dB, ~1 px of blur) gain little
    and one loses 5 dB, which cancels the +0.5 dB of the real-blur tiles (mean +0.05 dB). The content
    loss is the MSE (no VGG): WGAN-GP at 1e-3 made the adversarial term larger than the pixel term
    (-1.2e-3 vs 0.8e-3) and cost 0.6 dB in 100 steps; 1e-5 keeps it < 0.5% of the total. 3000
    warm-up steps at lr 1e-3 (300 at 3e-4: -1.4 dB). Demo: +0.81 dB (28.88 -> 29.68), SSIM-Y +0.015,
    RGB +0.74 dB (no colour damage), 14 of 15 tiles better, 5m30s.
    """
    sr = task == "sr"
    return Config(
        name="tiny",
        task=task,
        # One embedded folder of photographs serves both tasks: deblurring blurs it synthetically.
        data=DataConfig(root=SAMPLE_DATA, layout="folder", crop_size=128, blur_kernel_size=15,
                        blur_min_exposure=0.5),
        model=ModelConfig(num_blocks=4, channels=32, batch_norm=False, residual_bicubic=True,
                          disc_channels=16, disc_dense=128, deblur_channels=16, deblur_blocks=2,
                          deblur_dropout=0.0, critic_channels=16, critic_layers=2),
        loss=LossConfig(perceptual_net="", perceptual_weight=0.0,
                        adversarial="bce" if sr else "wgan-gp",
                        adversarial_weight=1e-4 if sr else 1e-5),
        train=TrainConfig(batch_size=8, warmup_steps=3000, gan_steps=300 if sr else 200,
                          disc_steps=1, lr_gen=1e-3, lr_gen_gan=1e-4, lr_disc=1e-4, patch_size=64,
                          augment_rotate=True,
                          checkpoint_every=500, log_every=100, image_every=500, shuffle_buffer=256),
        eval=EvalConfig(max_images=16, report_images=4),
    )


def _srgan_celeba() -> Config:
    """SRGAN paper settings (Ledig et al. 2017) on CelebA faces, 128x128 HR crops as in the classic
    CelebA recipe: SRResNet B=16, 64 channels; 1e6 MSE warm-up steps (here scaled by config), then
    VGG19 block5_conv4 content loss + 1e-3 BCE adversarial; Adam(1e-4, beta1=0.9)."""
    return Config(
        name="srgan-celeba",
        task="sr",
        data=DataConfig(root="", layout="celeba", crop_size=128),
        model=ModelConfig(num_blocks=16, channels=64, batch_norm=True, icnr_init=True),
        loss=LossConfig(pixel="mse", pixel_weight=0.0, perceptual_net="vgg19",
                        perceptual_layer="block5_conv4", perceptual_weight=0.006,
                        adversarial="bce", adversarial_weight=1e-3),
        train=TrainConfig(batch_size=16, warmup_steps=100_000, gan_steps=100_000, disc_steps=1,
                          lr_gen=1e-4, lr_disc=1e-4, lr_schedule="step", lr_decay_steps=50_000,
                          checkpoint_every=1000, log_every=100, image_every=1000),
        eval=EvalConfig(min_psnr=24.0, min_ssim=0.70),
    )


def _srresnet_psnr() -> Config:
    """A PSNR-oriented SRResNet x4 that trains in about 1.5 hours on 2 CPU cores (benchmarks target:
    >= 1.5 dB over bicubic on Set5). The paper's 16 blocks x 64 channels without batch norm (as EDSR:
    BN costs PSNR), on top of bicubic with a zero-initialised tail (the untrained model is bicubic),
    L1 pixel loss only (no adversarial phase), random 96x96 HR patches in all 8 orientations from
    128x128 tiles (`data/prepare_dataset.py tiles` cuts them from any photographs), Adam 3e-4 held
    for half the steps then linearly to 0. 10k steps at batch 16: 0.44 s/step here (1.2 hours)."""
    return Config(
        name="srresnet-psnr",
        task="sr",
        data=DataConfig(root="", layout="folder", crop_size=128),
        model=ModelConfig(num_blocks=16, channels=64, batch_norm=False, residual_bicubic=True, icnr_init=True),
        loss=LossConfig(pixel="l1", pixel_weight=1.0, perceptual_net="", perceptual_weight=0.0),
        train=TrainConfig(batch_size=16, warmup_steps=10_000, gan_steps=0, lr_gen=3e-4, lr_schedule="linear",
                          lr_decay_steps=5_000, patch_size=96, augment_rotate=True, shuffle_buffer=512,
                          checkpoint_every=500, log_every=100, image_every=1000),
        eval=EvalConfig(min_gain_over_baseline=0.5, max_images=100),
    )


def _deblurgan_gopro() -> Config:
    """DeblurGAN paper settings (Kupyn et al. 2018) on GOPRO: 256x256 crops, ResNet generator with 9
    blocks and dropout 0.5, 70x70 PatchGAN critic, WGAN-GP (lambda 10) + 100 x VGG16 block3_conv3
    perceptual loss, 5 critic steps per generator step, Adam(1e-4, beta1=0.5, beta2=0.999)."""
    return Config(
        name="deblurgan-gopro",
        task="deblur",
        data=DataConfig(root="", layout="gopro", crop_size=256),
        model=ModelConfig(deblur_channels=64, deblur_blocks=9, deblur_dropout=0.5,
                          critic_channels=64, critic_layers=3),
        loss=LossConfig(pixel="l1", pixel_weight=0.0, perceptual_net="vgg16",
                        perceptual_layer="block3_conv3", perceptual_weight=100.0,
                        adversarial="wgan-gp", adversarial_weight=1.0, gp_weight=10.0),
        train=TrainConfig(batch_size=1, warmup_steps=0, gan_steps=300_000, disc_steps=5,
                          lr_gen=1e-4, lr_disc=1e-4, adam_beta1=0.5, adam_beta2=0.999,
                          lr_schedule="linear", lr_decay_steps=150_000,
                          checkpoint_every=1000, log_every=100, image_every=1000),
        eval=EvalConfig(min_psnr=26.0, min_ssim=0.80),
    )


PRESETS = {
    "tiny": _tiny,
    "srgan-celeba": lambda task=None: _srgan_celeba(),
    "srresnet-psnr": lambda task=None: _srresnet_psnr(),
    "deblurgan-gopro": lambda task=None: _deblurgan_gopro(),
}


def preset(name: str, task: str | None = None, overrides: Dict[str, Any] | None = None) -> Config:
    """A named preset, for `task` where the preset serves both, with dotted overrides."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    cfg = PRESETS[name](task or "sr")
    if task and cfg.task != task:
        raise ValueError(f"preset {name!r} is for task {cfg.task!r}, not {task!r}")
    return cfg.override(overrides) if overrides else cfg
