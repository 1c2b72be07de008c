"""PyTorch side of the speed benchmarks (runs in .venv-torch, Python 3.11; never imported by the product).

A faithful re-implementation of what models/networks/sr.py builds for the `srgan-celeba` preset:
SRResNet (9x9 head conv + per-channel PReLU, 16 residual blocks conv-BN-PReLU-conv-BN, body conv + BN,
long skip, two sub-pixel x2 stages conv 64->256 + pixel shuffle + PReLU, 9x9 tail conv, tanh mapped
to [0, 1]) and the SRGAN discriminator (eight 3x3 convs 64..512, BN, LeakyReLU 0.2, dense 1024,
dense 1); parameter counts include BN running statistics, as Keras' count_params does.
The content loss uses VGG19 up to relu(conv5_4) (Keras' block5_conv4 output); weights are random on
both sides in the benchmark (speed does not depend on them).

    .venv-torch/bin/python -m benchmarks.torch_srresnet infer --variant fp32 --sizes 128,256
    .venv-torch/bin/python -m benchmarks.torch_srresnet train --batch 16 --crop 96
"""
from __future__ import annotations

import argparse

import torch
from torch import nn

from benchmarks import common

INFER_VARIANTS = ("fp32", "fp32_channels_last", "bf16_channels_last", "bf16")


class ResidualBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c), nn.PReLU(c, 0.25),
                                  nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c))

    def forward(self, x):
        return x + self.body(x)


class SRResNet(nn.Module):
    def __init__(self, blocks: int = 16, c: int = 64, scale: int = 4):
        super().__init__()
        self.head = nn.Sequential(nn.Conv2d(3, c, 9, padding=4), nn.PReLU(c, 0.25))
        self.blocks = nn.Sequential(*[ResidualBlock(c) for _ in range(blocks)])
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c))
        ups = []
        for _ in range(int(scale).bit_length() - 1):
            ups += [nn.Conv2d(c, 4 * c, 3, padding=1), nn.PixelShuffle(2), nn.PReLU(c, 0.25)]
        self.up = nn.Sequential(*ups)
        self.tail = nn.Conv2d(c, 3, 9, padding=4)

    def forward(self, x):
        h = self.head(x)
        x = h + self.body(self.blocks(h))
        return torch.tanh(self.tail(self.up(x))) * 0.5 + 0.5


class SRGANDiscriminator(nn.Module):
    LAYERS = ((1, 1), (1, 2), (2, 1), (2, 2), (4, 1), (4, 2), (8, 1), (8, 2))  # as models/networks/sr.py

    def __init__(self, size: int, c: int = 64, dense: int = 1024):
        super().__init__()
        layers, cin = [], 3
        for i, (mult, stride) in enumerate(self.LAYERS):
            layers.append(nn.Conv2d(cin, c * mult, 3, stride, padding=1))
            if i > 0:
                layers.append(nn.BatchNorm2d(c * mult))
            layers.append(nn.LeakyReLU(0.2))
            cin = c * mult
        self.features = nn.Sequential(*layers)
        side = size // 16
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(cin * side * side, dense), nn.LeakyReLU(0.2),
                                  nn.Linear(dense, 1))

    def forward(self, x):
        return self.head(self.features(x * 2 - 1))


def vgg19_to_conv5_4():
    """VGG19 convolutions up to relu(conv5_4), max-pooling between blocks (torchvision's features[:36])."""
    cfg = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512)
    layers, cin = [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=True)]
            cin = v
    return nn.Sequential(*layers)


def param_count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters()) + sum(
        b.numel() for name, b in m.named_buffers() if not name.endswith("num_batches_tracked"))


def infer(args) -> None:
    torch.manual_seed(0)
    model = SRResNet().eval()
    params = param_count(model)
    cl = "channels_last" in args.variant
    bf16 = args.variant.startswith("bf16")
    if cl:
        model = model.to(memory_format=torch.channels_last)
    for size in [int(s) for s in args.sizes.split(",") if s]:
        x = torch.rand(1, 3, size, size)
        if cl:
            x = x.contiguous(memory_format=torch.channels_last)

        def run(x=x):
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                return model(x).float()

        stats = common.time_calls(run, args.warmup, args.runs)
        rec = {"bench": "inference", "side": "torch", "variant": args.variant, "size": size,
               "threads": torch.get_num_threads(), "params": params, "torch": torch.__version__,
               "load": common.load_average(), **stats}
        print(f"torch {args.variant:20s} {size}x{size} LR: {common.fmt_ms(stats['median_s'])} ms/image (median of "
              f"{args.runs}), {1 / stats['median_s']:.2f} images/s, params {params:,}; load {rec['load']}", flush=True)
        common.emit(rec)


def train(args) -> None:
    """One SRGAN step as models/gan_loop.py runs it: a discriminator update on a batch, then a generator
    update with 0.006 x VGG19 content loss + 1e-3 x BCE adversarial loss (the srgan-celeba weights)."""
    torch.manual_seed(0)
    g, d, vgg = SRResNet(), SRGANDiscriminator(args.crop), vgg19_to_conv5_4()
    vgg.requires_grad_(False)
    opt_g = torch.optim.Adam(g.parameters(), 1e-4, betas=(0.9, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 1e-4, betas=(0.9, 0.999))
    bce = nn.BCEWithLogitsLoss()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    hr = torch.rand(args.batch, 3, args.crop, args.crop)
    lr = torch.rand(args.batch, 3, args.crop // 4, args.crop // 4)

    def step():
        with torch.no_grad():
            fake = g(lr)
        real_logits, fake_logits = d(hr), d(fake)
        loss_d = bce(real_logits, torch.ones_like(real_logits)) + bce(fake_logits, torch.zeros_like(fake_logits))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        d.requires_grad_(False)
        out = g(lr)
        feats = vgg((torch.cat([hr, out]) - mean) / std)
        content = nn.functional.mse_loss(feats[args.batch:], feats[:args.batch].detach())
        logits = d(out)
        loss_g = 0.006 * content + 1e-3 * bce(logits, torch.ones_like(logits))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        d.requires_grad_(True)

    stats = common.time_calls(step, args.warmup, args.runs)
    rec = {"bench": "train", "side": "torch", "batch": args.batch, "crop": args.crop,
           "threads": torch.get_num_threads(), "params_g": param_count(g), "params_d": param_count(d),
           "torch": torch.__version__, "load": common.load_average(), **stats}
    print(f"torch SRGAN step batch {args.batch} {args.crop}x{args.crop}: {stats['median_s']:.2f} s/step "
          f"(median of {args.runs}), {args.batch / stats['median_s']:.2f} images/s; load {rec['load']}", flush=True)
    common.emit(rec)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=("infer", "train"))
    p.add_argument("--variant", choices=INFER_VARIANTS, default="fp32")
    p.add_argument("--sizes", default="128,256")
    common.add_step_arguments(p)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    infer(args) if args.mode == "infer" else train(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
