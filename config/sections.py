"""The sections of the run configuration: what each setting means, its type, default and bounds.

Each field may carry `metadata` with the checks `config.checks` applies when a `Config` is built:
`min` / `max` (inclusive bounds), `above` / `below` (exclusive bounds), `choices` (an enumeration).
Cross-field rules (a crop that is a multiple of the scale, ...) live in `config.checks`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

TASKS = ("sr", "deblur")
LAYOUTS = ("folder", "celeba", "gopro")
PIXEL_LOSSES = ("mse", "l1")
PERCEPTUAL_NETS = ("", "vgg16", "vgg19")  # "" disables the perceptual loss
ADVERSARIAL_LOSSES = ("bce", "wgan-gp", "ragan")
LR_SCHEDULES = ("constant", "step", "linear")
SR_SCALES = (2, 4, 8)
PRECISIONS = ("float32", "bfloat16", "float16")  # export.precision


def setting(default, **checks):
    """A dataclass field whose metadata holds its checks (min, max, above, below, choices)."""
    if isinstance(default, (list, dict)):
        raise TypeError("use tuples for sequence defaults")
    return field(default=default, metadata=checks)


def positive(default):
    return setting(default, min=1)


@dataclass
class DataConfig:
    # Where the images are and how they are laid out: "folder" (any folder of images, recursive),
    # "celeba" (img_align_celeba/ + optional list_eval_partition.txt), "gopro"
    # ({train,test}/<scene>/{blur,sharp}/).
    root: str = ""
    layout: str = setting("folder", choices=LAYOUTS)
    # Splits when the dataset defines none: deterministic by a hash of the image id.
    train_ratio: float = setting(0.8, above=0.0, below=1.0)
    # Images below this size (after ingestion) are rejected; 0 means "the crop size".
    min_size: int = setting(0, min=0)
    # Decompression-bomb guard: images with more pixels are rejected unread.
    max_pixels: int = positive(40_000_000)
    # HR crop (SR) or sharp/blur crop (deblur) taken by Transform. 128 for CelebA as in the classic
    # recipe, 256 for GOPRO as in DeblurGAN.
    crop_size: int = positive(128)
    # Deblurring on sharp-only data: synthetic camera-trajectory motion blur (DeblurGAN paper).
    blur_kernel_size: int = positive(31)
    blur_seed: int = setting(0, min=0)
    # Exposure fractions of the camera trajectory drawn for the synthetic kernels: DeblurGAN's 1/100,
    # 1/10, 1/2 and 1, keeping those >= this. 0.1 (default) drops the 1/100 draw, which spans ~0.1
    # pixel and does not blur at all; 0 reproduces DeblurGAN's draws (docs/pipeline.md).
    blur_min_exposure: float = setting(0.1, min=0.0, max=1.0)
    # Transform's full-pass analyzer: the training split's per-channel mean (`target_mean` in every
    # transformed example), for models that normalise their input by it. Off: none of ours does, and
    # its analysis pass reads and decodes every train image again (docs/benchmarks.md, data path).
    dataset_mean: bool = False


@dataclass
class ModelConfig:
    # SR generator (SRResNet)
    scale: int = setting(4, choices=SR_SCALES)
    num_blocks: int = positive(16)
    channels: int = positive(64)
    batch_norm: bool = True
    icnr_init: bool = True
    residual_bicubic: bool = False  # output = bicubic(LR) + generator(LR)
    # SR discriminator (SRGAN): first conv width; doubles every two layers to 8x.
    disc_channels: int = positive(64)
    disc_dense: int = positive(1024)
    # Deblur generator (DeblurGAN ResNet) and critic (PatchGAN)
    deblur_channels: int = positive(64)
    deblur_blocks: int = setting(9, min=0)
    deblur_dropout: float = setting(0.5, min=0.0, below=1.0)
    critic_channels: int = positive(64)
    critic_layers: int = positive(3)  # 3 -> the 70x70 PatchGAN


@dataclass
class LossConfig:
    pixel: str = setting("mse", choices=PIXEL_LOSSES)
    pixel_weight: float = setting(1.0, min=0.0)
    # Perceptual loss on VGG features ("" disables it). SRGAN: vgg19/block5_conv4 with features
    # divided by 12.75 (the paper's 1/12.75 rescaling); DeblurGAN: vgg16/block3_conv3.
    perceptual_net: str = setting("vgg19", choices=PERCEPTUAL_NETS)
    perceptual_layer: str = "block5_conv4"
    perceptual_weight: float = setting(0.006, min=0.0)  # (1/12.75)^2 on squared features
    # Adversarial: "bce" (SRGAN), "wgan-gp" (DeblurGAN), "ragan" (ESRGAN relativistic average).
    adversarial: str = setting("bce", choices=ADVERSARIAL_LOSSES)
    adversarial_weight: float = setting(1e-3, min=0.0)
    gp_weight: float = setting(10.0, min=0.0)
    # Keras weights file for the VGG: an explicit path, else the standard Keras file name looked up
    # in ~/.keras/models (and $KERAS_HOME/models). A missing file is an error at start.
    vgg_weights: str = ""
    # Test-only switch: random VGG weights. Never set by presets or the CLI.
    allow_random_vgg: bool = False


@dataclass
class TrainConfig:
    batch_size: int = positive(16)
    warmup_steps: int = setting(1000, min=0)  # pixel-loss generator steps before the adversarial phase
    gan_steps: int = setting(1000, min=0)  # adversarial generator steps
    disc_steps: int = positive(1)  # discriminator (critic) steps per generator step; 5 for WGAN-GP
    lr_gen: float = setting(1e-4, above=0.0)
    lr_gen_gan: float = setting(0.0, min=0.0)  # generator lr in the adversarial phase (fresh Adam); 0 = lr_gen
    lr_disc: float = setting(1e-4, above=0.0)
    adam_beta1: float = setting(0.9, min=0.0, below=1.0)
    adam_beta2: float = setting(0.999, min=0.0, below=1.0)
    # "constant" | "step" (halve every lr_decay_steps) | "linear" (hold until lr_decay_steps, then to 0)
    lr_schedule: str = setting("constant", choices=LR_SCHEDULES)
    lr_decay_steps: int = setting(0, min=0)
    clip_norm: float = setting(0.0, min=0.0)  # global-norm gradient clipping; 0 disables
    mixed_precision: bool = False  # float16 on GPU, bfloat16 on CPU where supported
    augment: bool = True  # random flips + small colour jitter (classic CelebA SRGAN recipe)
    augment_rotate: bool = False  # with augment: also random 90-degree turns (not for aligned faces)
    # Random square patches of this many target pixels, aligned to the input (LR) grid, cut from each
    # crop in the input pipeline (SRGAN trains on random 96x96 HR patches); 0, or >= data.crop_size:
    # the whole crop. The discriminator is built for this size.
    patch_size: int = setting(0, min=0)
    shuffle_buffer: int = positive(1024)
    seed: int = setting(0, min=0)
    checkpoint_every: int = positive(200)
    log_every: int = positive(50)  # progress line (steps/s, ETA) and TensorBoard scalars
    image_every: int = positive(200)  # TensorBoard image grid (LR | bicubic | output | HR)
    # Checkpoints outlive a failed execution: <checkpoint_root>/<pipeline>/<training run>/, the run
    # identified by its settings and its input data (models/trainer.py). Empty: <pipeline_root>/checkpoints.
    checkpoint_root: str = ""
    # Initialise the generator from the latest blessed model (locally the Trainer's base_model from a
    # Resolver, on Kubeflow the newest version in the serving directory) when a run starts afresh;
    # `gan-restore schedule` turns it on for scheduled retraining. A resumed run restores its checkpoint.
    warm_start: bool = False
    # With warm_start, where a run starts when no model has been blessed yet: a SavedModel directory or
    # a serving base (its newest version), e.g. a shipped pretrained model (pretrained/).
    warm_start_from: str = ""
    # Devices: 0 = all GPUs present (MirroredStrategy for >1), CPU when there are none; >= 1 asks for
    # that many GPUs and the Trainer stops at start when none is visible (Kubeflow sets it to
    # kubeflow.trainer_gpus), unless allow_cpu (then it trains on the CPU, with a warning).
    num_gpus: int = setting(0, min=0)
    allow_cpu: bool = False


@dataclass
class EvalConfig:
    # Gate: absolute lower bounds on the eval split (Y channel, published protocol) ...
    min_psnr: float = setting(0.0, min=0.0)
    min_ssim: float = setting(0.0, min=0.0, max=1.0)
    # ... and no regression against the latest blessed model beyond these tolerances.
    max_psnr_drop: float = setting(0.1, min=0.0)
    max_ssim_drop: float = setting(0.005, min=0.0, max=1.0)
    # Require beating the baseline (bicubic for SR, the blurred input for deblur) by this much (dB);
    # None disables that check.
    min_gain_over_baseline: float | None = None
    max_images: int = positive(100)  # eval images in the report and metrics
    report_images: int = setting(4, min=0)  # rows in the picture grid


@dataclass
class ServingConfig:
    model_name: str = ""  # default: "srgan" / "deblurgan" by task
    serving_base: str = ""  # Pusher target: <serving_base>/<model_name>/<version>/; default under the run root
    grpc_port: int = setting(8500, min=0, max=65535)
    rest_port: int = setting(8501, min=0, max=65535)
    max_pixels: int = positive(16_000_000)  # request image size bound (pixels)
    max_message_mb: int = positive(256)
    tile_size: int = setting(0, min=0)  # 0: no tiling; otherwise tile edge in input pixels
    tile_overlap: int = setting(32, min=0)  # 16 leaves visible seams (17/255) with SRResNet; 32 gives <= 1/255
    timeout_s: float = setting(60.0, above=0.0)
    retries: int = setting(3, min=0)
    # Local server (serving/local_server.py): model directory poll period (TF Serving's
    # --file_system_poll_wait_seconds), request threads per protocol, grace for in-flight requests.
    poll_seconds: float = setting(1.0, above=0.0)
    server_threads: int = positive(8)
    shutdown_grace_s: float = setting(30.0, min=0.0)
    # Input pixels restored at once, all requests together (memory grows with them): more queue, in
    # order. The default lets one request of max_pixels run; a larger one runs alone.
    max_concurrent_pixels: int = positive(16_000_000)
    # REST: a request must arrive whole within this many seconds of its first byte (else 408), an idle
    # connection is closed after as long; the listen backlog (capped by the kernel's somaxconn).
    rest_read_timeout_s: float = setting(30.0, above=0.0)
    rest_backlog: int = positive(1024)


@dataclass
class ExportConfig:
    # Arithmetic of the served graph (models/inference): float32; bfloat16 on CPUs with native bfloat16
    # (AVX512_BF16 or AMX; ARM BF16); float16 on GPUs. The export refuses a precision the exporting
    # machine cannot run at speed (models/inference/precision.py).
    precision: str = setting("float32", choices=PRECISIONS)
    # The served graph restores inputs with a side above tile_size (input pixels) in overlapping tiles
    # of at most tile_size, so a request's memory is set by the tile, not the image; 0: whole images.
    # 256 keeps SRResNet 16x64 under ~1.5 GB per request at any size (docs/serving.md).
    tile_size: int = setting(256, min=0)
    tile_overlap: int = setting(32, min=0)  # input pixels; above the generator's receptive radius


@dataclass
class KubeflowConfig:
    image: str = "ghcr.io/example/gan-restoration:0.1.0"
    pipeline_root: str = "gs://your-bucket/gan-restoration"
    # The cluster's data and serving locations (object storage, like pipeline_root). Empty: the
    # image folders under <pipeline_root>/data, pushed models under <pipeline_root>/serving.
    data_root: str = ""
    serving_base: str = ""
    output_file: str = ""  # default: <name>.yaml
    trainer_gpus: int = setting(1, min=0)
    # GPU type for the Trainer's node selector (`<accelerator_label>: <trainer_accelerator>` in the
    # package's Kubernetes platform spec, e.g. nvidia-l4 on GKE); empty: any node with the GPUs.
    trainer_accelerator: str = ""
    accelerator_label: str = "cloud.google.com/gke-accelerator"
    # > 1: the Trainer launches a Training Operator TFJob of this many workers (trainer_gpus each,
    # MultiWorkerMirroredStrategy) and waits for it (docs/kubeflow.md, multi-worker training).
    trainer_workers: int = setting(1, min=1)
    tfjob_namespace: str = ""  # the TFJob's namespace; empty: the pipeline run's own
    trainer_cpu: float = setting(8.0, above=0.0)
    trainer_memory: str = "32G"
    component_cpu: float = setting(2.0, above=0.0)
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


SECTIONS = {"data": DataConfig, "model": ModelConfig, "loss": LossConfig, "train": TrainConfig,
            "eval": EvalConfig, "serving": ServingConfig, "export": ExportConfig,
            "kubeflow": KubeflowConfig}
