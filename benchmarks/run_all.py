"""`make bench`: quality, inference speed, serving, training speed and data-path benchmarks, one Markdown report.

    python -m benchmarks.run_all [--quick] [--only quality,inference,serving,train,datapath] [--sr_model DIR]

Every speed figure is printed beside its peer's figure from the same run and the ratio; each side
runs in its own process with the same thread count (intra-op = nproc), warm-up runs excluded,
median of N. The PyTorch side runs in a separate Python 3.11 venv (.venv-torch, created by
scripts/setup_torch_env.sh when missing). Results: benchmarks/results/<date>/report.md (+ PNGs, JSON).
One module over 300 lines on purpose: each section's runs and its Markdown table read together here.
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys
from typing import Dict, List

from benchmarks import common

SECTIONS = ("quality", "inference", "serving", "train", "datapath")
SERVING_SIZE = 128  # LR edge of the served request (a Set5 crop as PNG)
SERVING_CLIENTS = "1,4,16"
TF_FP32 = "savedmodel_fp32"  # the product path: the exported SavedModel, float32
TORCH_FP32 = "fp32"
PSNR_BUDGET_DB = 0.05  # the largest acceptable PSNR cost of a faster variant
# XLA's CPU convolutions and TFLite's XNNPACK measured 3-5x slower than oneDNN here; they stay
# available with --tf_variants (xla_fp32, xla_mixed_bf16, tflite_fp32).
TF_BF16 = "savedmodel_bf16"  # the product path with export.precision=bfloat16 (skipped on CPUs without it)
TF_VARIANTS = ("savedmodel_fp32", "savedmodel_bf16", "keras_fp32", "frozen_fp32", "folded_fp32", "amp_bf16",
               "frozen_amp_bf16", "mixed_bf16", "folded_bf16", "folded_amp_bf16")
QUICK_TF_VARIANTS = ("savedmodel_fp32", "savedmodel_bf16", "folded_fp32", "mixed_bf16", "folded_amp_bf16")
EXPORT_VS_TORCH_BF16 = 0.75  # the bfloat16 export against PyTorch's fastest (issue 16)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small N: checks the benchmarks run end to end")
    p.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    p.add_argument("--sizes", default="128,256", help="LR edge lengths for inference")
    p.add_argument("--runs", type=int, default=10, help="timed runs per inference figure")
    p.add_argument("--tf_variants", default=",".join(TF_VARIANTS), help="see benchmarks/inference_tf.py VARIANTS")
    p.add_argument("--torch_variants", default="fp32,fp32_channels_last,bf16_channels_last")
    p.add_argument("--datapath_images", default="400,2000", help="two dataset sizes for the TFX runs")
    p.add_argument("--serving_requests", type=int, default=24, help="requests per client count (at least 4 per "
                                                                     "client)")
    p.add_argument("--malformed_mb", type=int, default=200, help="size of the wrong-shaped REST body timed")
    p.add_argument("--sr_model", default="")
    p.add_argument("--deblur_model", default="")
    p.add_argument("--out", default="")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.quick:
        args.runs, args.sizes, args.datapath_images = 2, "128", "20,60"
        args.serving_requests, args.malformed_mb = 8, 20
        args.tf_variants = ",".join(QUICK_TF_VARIANTS)
    sections = [s for s in args.only.split(",") if s]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}")
    out = args.out or common.results_dir()
    os.makedirs(out, exist_ok=True)
    cpu = common.cpu_info()
    peak = common.peak_flops(cpu)
    md = ["# Benchmarks", "",
          f"Run {datetime.datetime.now().isoformat(timespec='seconds')} on {cpu['model']} "
          f"({cpu['cores']} cores, {cpu['ghz']:.2f} GHz, {', '.join(cpu['flags'])}).",
          f"Figures are {common.load_note()} at the start; each line carries the load average when it was taken.",
          f"Peak compute: fp32 {peak['fp32_flops'] / 1e9:.0f} GFLOP/s, bf16 {peak['bf16_flops'] / 1e9:.0f} GFLOP/s "
          f"= {peak['how']}.", ""]
    if args.quick:
        md[-1:] = ["**Quick run** (`--quick`): small N, to check that every benchmark runs end to end. Its figures "
                   "are not measurements and its target verdicts mean nothing; run without `--quick` for those.", ""]
    print("\n".join(md), flush=True)
    records: Dict[str, list] = {}
    for section in sections:
        print(f"\n=== {section} === load average {common.load_average()}", flush=True)
        try:
            if section == "serving":
                part, recs = serving(args, out, peak, records.get("inference"))
            else:
                part, recs = {"quality": quality, "inference": inference, "train": train,
                              "datapath": datapath}[section](args, out, peak)
        except RuntimeError as e:  # one broken benchmark must not lose the others' figures
            print(f"FAILED: {section}: {e}", flush=True)
            part, recs = [f"## {section}", "", f"FAILED: {e} (see the run's console output)", ""], []
        md += part
        records[section] = recs
    path = os.path.join(out, "report.md")
    with open(path, "w") as f:
        f.write("\n".join(md) + "\n")
    common.write_json(os.path.join(out, "results.json"), {"cpu": cpu, "peak": peak, "records": records})
    print(f"\nreport: {path}")
    return 0


def _py() -> str:
    return sys.executable


# -- 1. quality --------------------------------------------------------------------------------------

def quality(args, out, peak):
    argv = [_py(), "-m", "benchmarks.quality", "--out", out]
    argv += ["--sr_model", args.sr_model] if args.sr_model else []
    argv += ["--deblur_model", args.deblur_model] if args.deblur_model else []
    argv += ["--max_images", "5"] if args.quick else []
    common.run_child(argv)
    qmd = os.path.join(out, "quality.md")
    return (open(qmd).read().splitlines() + [""] if os.path.exists(qmd) else ["## 1. Quality", "", "skipped", ""]), []


# -- 2. inference ------------------------------------------------------------------------------------

def inference(args, out, peak):
    threads = str(os.cpu_count())
    # PyTorch's oneDNN/OpenMP needs ~3 calls to reach steady state (measured): never fewer warm-ups.
    warmup = "3"
    set5 = common.shared_data_dir("Set5", "LRx4")
    tf_recs, fid = [], {}
    for v in [v for v in args.tf_variants.split(",") if v]:
        argv = [_py(), "-m", "benchmarks.inference_tf", "--variant", v, "--sizes", args.sizes, "--runs",
                str(args.runs), "--warmup", warmup, "--threads", threads]
        if set5 and v != TF_FP32:  # the float32 SavedModel is the reference itself
            argv += ["--fidelity_dir", set5] + (["--fidelity_model", args.sr_model] if args.sr_model else [])
        for r in common.run_child(argv):
            (tf_recs.append(r) if r["bench"] == "inference" else fid.__setitem__(v, r))
    torch_recs = []
    if common.ensure_torch_env():
        for v in [v for v in args.torch_variants.split(",") if v]:
            torch_recs += common.run_child([common.TORCH_PYTHON, "-m", "benchmarks.torch_srresnet", "infer",
                                            "--variant", v, "--sizes", args.sizes, "--runs", str(args.runs),
                                            "--warmup", warmup, "--threads", threads])
    md = inference_markdown(tf_recs, torch_recs, fid, peak, args.runs)
    print("\n".join(md), flush=True)
    return md, {"tf": tf_recs, "torch": torch_recs, "fidelity": fid}


def _fidelity_model(fid) -> str:
    models = {f.get("model", "") for f in fid.values()}
    if not models:
        return "no fidelity figures (no Set5 LR images)"
    if any("untrained" in m for m in models):
        return ("untrained seeded weights only (pass --sr_model for a trained generator: an untrained cost says "
                "little about real images)")
    return "the trained generator " + ", ".join(f"`{m}`" for m in sorted(models))


def _by(recs, variant, size):
    return next((r for r in recs if r["variant"] == variant and r["size"] == size), None)


def _ok(fid, variant) -> bool:
    f = fid.get(variant)
    return f is None or f["psnr_y_cost_max"] < PSNR_BUDGET_DB  # float32 variants carry no fidelity record


def inference_markdown(tf_recs, torch_recs, fid, peak, runs) -> List[str]:
    md = ["## 2. Inference speed (SRResNet x4, 16 blocks, 64 channels, srgan-celeba preset)", ""]
    if tf_recs:
        r0 = tf_recs[0]
        t0 = torch_recs[0] if torch_recs else None
        md += [f"Parameters: ours {r0['params']:,}, PyTorch {t0['params']:,}." if t0 else
               f"Parameters: ours {r0['params']:,} (PyTorch side unavailable).",
               f"Threads: intra-op {r0['threads']}, inter-op {r0['inter']} on both sides; median of {runs} runs "
               f"after warm-up; batch 1. Multiply-adds per image from the traced graph's convolutions.",
               "PSNR-Y cost: the variant's Set5 PSNR-Y loss against the same model in float32, measured "
               f"with {_fidelity_model(fid)}.", ""]
    head = ["LR size", "side", "variant", "ms/image", "images/s", "vs PyTorch fp32", "GFLOP/s", "% of peak",
            "PSNR-Y cost (dB, Set5)", "load avg"]
    rows = []
    sizes = sorted({r["size"] for r in tf_recs + torch_recs})
    summary = []
    for size in sizes:
        ref = _by(torch_recs, TORCH_FP32, size)
        for side, recs in (("ours (TF)", tf_recs), ("PyTorch", torch_recs)):
            for r in sorted((r for r in recs if r["size"] == size), key=lambda r: r["median_s"]):
                macs = r.get("macs") or (tf_recs[0]["macs"] if tf_recs else 0) * (size / tf_recs[0]["size"]) ** 2
                flops = 2 * macs / r["median_s"]
                bf16 = "bf16" in r["variant"]
                pk = peak["bf16_flops" if bf16 else "fp32_flops"]
                f = fid.get(r["variant"]) if side.startswith("ours") else None
                cost = (f"{f['psnr_y_cost_mean']:+.3f} (max {f['psnr_y_cost_max']:+.3f}; "
                        f"{f['psnr_y_vs_fp32_mean']:.1f} dB vs fp32)") if f else ("0 (reference)" if
                                                                                  r["variant"] == TF_FP32 else "")
                rows.append([f"{size}x{size}", side, r["variant"], common.fmt_ms(r["median_s"]),
                             f"{1 / r['median_s']:.2f}", f"{ref['median_s'] / r['median_s']:.2f}x" if ref else "n/a",
                             f"{flops / 1e9:.0f}", f"{100 * flops / pk:.0f}% ({'bf16' if bf16 else 'fp32'})", cost,
                             r["load"]])
        summary += _targets(tf_recs, torch_recs, fid, size)
    md += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]
    md += ["", "Targets:", ""] + summary + [""]
    return md


def _targets(tf_recs, torch_recs, fid, size) -> List[str]:
    ours, theirs = _by(tf_recs, TF_FP32, size), _by(torch_recs, TORCH_FP32, size)
    lines = []
    if ours and theirs:
        ratio = ours["median_s"] / theirs["median_s"]
        lines.append(f"- {size}x{size} float32: ours/PyTorch time ratio {ratio:.2f} (target <= 1.0: "
                     f"{'met' if ratio <= 1.0 else 'NOT met'}; {common.fmt_ms(ours['median_s'])} vs "
                     f"{common.fmt_ms(theirs['median_s'])} ms)")
    fast_ours = min((r for r in tf_recs if r["size"] == size and _ok(fid, r["variant"])),
                    key=lambda r: r["median_s"], default=None)
    fast_theirs = min((r for r in torch_recs if r["size"] == size), key=lambda r: r["median_s"], default=None)
    if fast_ours and fast_theirs:
        ratio = fast_ours["median_s"] / fast_theirs["median_s"]
        f = fid.get(fast_ours["variant"])
        cost = f"PSNR-Y cost {f['psnr_y_cost_max']:+.3f} dB max" if f else "float32"
        lines.append(f"- {size}x{size} fastest: ours {fast_ours['variant']} {common.fmt_ms(fast_ours['median_s'])} ms "
                     f"({cost}) vs PyTorch {fast_theirs['variant']} {common.fmt_ms(fast_theirs['median_s'])} ms: "
                     f"ratio {ratio:.2f} (target <= 1.0 with cost < {PSNR_BUDGET_DB} dB: "
                     f"{'met' if ratio <= 1.0 else 'NOT met'})")
    lines += _export_lines(tf_recs, fast_theirs, size)
    return lines


def _export_lines(tf_recs, fast_theirs, size) -> List[str]:
    """The exported SavedModel against the fastest in-process graph of the same precision, and its
    bfloat16 form against PyTorch's fastest."""
    lines = []
    for export, bf16 in ((TF_FP32, False), (TF_BF16, True)):
        ours = _by(tf_recs, export, size)
        best = min((r for r in tf_recs if r["size"] == size and ("bf16" in r["variant"]) == bf16
                    and r["variant"] != export), key=lambda r: r["median_s"], default=None)
        if ours and best:
            lines.append(f"- {size}x{size} export {export} {common.fmt_ms(ours['median_s'])} ms vs the fastest "
                         f"in-process {'bf16' if bf16 else 'fp32'} variant {best['variant']} "
                         f"{common.fmt_ms(best['median_s'])} ms: {ours['median_s'] / best['median_s']:.2f}x")
    ours = _by(tf_recs, TF_BF16, size)
    if ours and fast_theirs:
        ratio = ours["median_s"] / fast_theirs["median_s"]
        lines.append(f"- {size}x{size} export {TF_BF16} vs PyTorch {fast_theirs['variant']}: ratio {ratio:.2f} "
                     f"(target <= {EXPORT_VS_TORCH_BF16}: {'met' if ratio <= EXPORT_VS_TORCH_BF16 else 'NOT met'})")
    return lines


# -- 3. serving -------------------------------------------------------------------------------------

def serving(args, out, peak, inference_recs):
    """128x128 PNG over gRPC to `gan-restore serve` at 1, 4 and 16 clients, beside the in-process variants
    and PyTorch from this run (measured here at 128 when the inference section did not run)."""
    argv = [_py(), "-m", "benchmarks.serving_load", "--clients", SERVING_CLIENTS, "--size", str(SERVING_SIZE),
            "--requests", str(args.serving_requests), "--warmup", "3", "--first_request", "--malformed_mb",
            str(args.malformed_mb), "--emit"]
    argv += ["--model_dir", args.sr_model] if args.sr_model else ["--bench_model"]
    recs = common.run_child(argv)
    if not inference_recs or not any(r["size"] == SERVING_SIZE for r in inference_recs["tf"]):
        print(f"(in-process reference figures at {SERVING_SIZE}x{SERVING_SIZE}, measured now)", flush=True)
        sizes, args.sizes = args.sizes, str(SERVING_SIZE)
        _, inference_recs = inference(args, out, peak)
        args.sizes = sizes
    md = serving_markdown(recs, inference_recs, args.sr_model)
    print("\n".join(md), flush=True)
    return md, {"serving": recs, "reference": inference_recs}


def serving_markdown(recs, ref, sr_model: str) -> List[str]:
    loads = [r for r in recs if r["bench"] == "serving"]
    tf_at = [r for r in ref["tf"] if r["size"] == SERVING_SIZE]
    best_fp32 = min((r for r in tf_at if "bf16" not in r["variant"]), key=lambda r: r["median_s"], default=None)
    best = min((r for r in tf_at if _ok(ref["fidelity"], r["variant"])), key=lambda r: r["median_s"], default=None)
    torch_best = min((r for r in ref["torch"] if r["size"] == SERVING_SIZE), key=lambda r: r["median_s"],
                     default=None)
    model = f"`{sr_model}`" if sr_model else "the benchmark SRResNet (16x64, srgan-celeba preset, seeded weights)"
    md = [f"## 3. Serving ({SERVING_SIZE}x{SERVING_SIZE} LR PNG over gRPC to `gan-restore serve`)", "",
          f"Served: {model}, exported by models/export.py and published as the Pusher does; `serving_default` "
          f"(PNG in, PNG out: decode, generator, encode), one image per request, each client its own channel, "
          f"loopback. Latency is the client's wall time per request.", "",
          "| clients | requests | p50 ms | p99 ms | throughput req/s | failures | load avg |",
          "|---|---|---|---|---|---|---|"]
    for r in loads:
        lat = r["latency_ms"]
        md.append(f"| {r['clients']} | {r['requests']} | {lat['p50']} | {lat['p99']} | {r['throughput_rps']} | "
                  f"{r['failures']} | {r['load']:.2f} |")
    md += ["", f"In-process, same run, {SERVING_SIZE}x{SERVING_SIZE} float graph only (no PNG, no transport):", ""]
    for label, r in (("our SavedModel, float32 (the served graph)", _by(tf_at, TF_FP32, SERVING_SIZE)),
                     ("our best float32 variant", best_fp32), ("our best variant (PSNR cost within budget)", best),
                     ("PyTorch's fastest", torch_best)):
        if r:
            md.append(f"- {label}: `{r['variant']}` {common.fmt_ms(r['median_s'])} ms")
    one = next((r for r in loads if r["clients"] == 1), None)
    if one and best_fp32:
        ratio = one["latency_ms"]["p50"] / (best_fp32["median_s"] * 1000)
        md.append(f"- Served p50 at 1 client / best in-process float32: {ratio:.2f} (target <= 1.15: "
                  f"{'met' if ratio <= 1.15 else 'NOT met'})")
    if one and torch_best:
        ratio = one["latency_ms"]["p50"] / (torch_best["median_s"] * 1000)
        md.append(f"- Served p50 at 1 client / PyTorch's fastest: {ratio:.2f}")
    firsts = [r for r in recs if r["bench"] == "serving_first_request"]
    if firsts:
        md += ["", "First request after a version becomes AVAILABLE (a fresh server each), against the steady-state "
                   "p50 of the next 10 (target <= 1.5x):", "",
               "| case | warm-up file | first ms | steady p50 ms | ratio | load avg |", "|---|---|---|---|---|---|"]
        md += [f"| {r['case']} | {r['warmup_file']} | {r['first_ms']} | {r['steady_p50_ms']} | {r['ratio']} | "
               f"{r['load']:.2f} |" for r in firsts]
    bad = [r for r in recs if r["bench"] == "serving_malformed"]
    if bad:
        md += ["", "Malformed REST bodies (refusal time; the server's peak resident memory before -> after):", "",
               "| body | MB | answer | seconds | server peak MB |", "|---|---|---|---|---|"]
        md += [f"| {r['body']} | {r['body_mb']} | {r['status']}: {r['error'][:70]} | {r['seconds']} | "
               f"{r['server_peak_mb_before']} -> {r['server_peak_mb_after']} |" for r in bad]
    return md + [""]


# -- 4. training -------------------------------------------------------------------------------------

def train(args, out, peak):
    runs, warmup = ("1", "2") if args.quick else ("5", "3")
    recs = common.run_child([_py(), "-m", "benchmarks.train_tf", "--runs", runs, "--warmup", warmup])
    if common.ensure_torch_env():
        recs += common.run_child([common.TORCH_PYTHON, "-m", "benchmarks.torch_srresnet", "train", "--runs", runs,
                                  "--warmup", warmup])
    tf_r = next((r for r in recs if r["side"] == "tf"), None)
    th_r = next((r for r in recs if r["side"] == "torch"), None)
    md = ["## 4. Training speed (one SRGAN step: D update + G update with VGG19 content + adversarial loss, "
          "batch 16, 96x96 HR)", "",
          "| side | s/step | images/s | G params | D params | ratio ours/PyTorch | load avg |",
          "|---|---|---|---|---|---|---|"]
    for r in (tf_r, th_r):
        if r:
            ratio = f"{tf_r['median_s'] / th_r['median_s']:.2f}" if tf_r and th_r else "n/a"
            side = "ours (TF, models/gan_loop.py)" if r["side"] == "tf" else "PyTorch"
            md.append(f"| {side} | {r['median_s']:.2f} | {r['batch'] / r['median_s']:.2f} | {r['params_g']:,} | "
                      f"{r['params_d']:,} | {ratio} | {r['load']} |")
    if tf_r:
        md += ["", f"Median of {tf_r['runs']} steps after {tf_r['warmup']} warm-up steps; VGG19: {tf_r['vgg']}."]
    md.append("")
    print("\n".join(md), flush=True)
    return md, recs


# -- 5. data path ------------------------------------------------------------------------------------

def datapath(args, out, peak):
    from benchmarks.datapath import break_even

    recs = common.run_child([_py(), "-m", "benchmarks.datapath", "--images", args.datapath_images,
                             "--repeat", "1" if args.quick else "2"])
    md = ["## 5. Data path (ExampleGen + Transform on Beam vs a plain loop)", ""]
    if not recs:
        return md + ["skipped (no B100 images)", ""], recs
    r = recs[0]
    plain_rate = r["plain_images"] / r["plain_s"]
    steady, fixed = r["steady_images_per_s"], r["fixed_s"]
    md += [f"BSD100 photographs (480x320, replicated), centre crop 128, antialiased bicubic x1/4, PNG out; "
           f"{r['cpus']} CPUs; Beam args `{' '.join(r['beam_args'])}`. The TFX path runs at two sizes: its "
           f"steady-state rate is the difference in images over the difference in seconds, the fixed start-up "
           f"what remains (benchmarks/datapath.py). Each time is the fastest of {r.get('repeat', 1)} runs.", "",
           "| path | images | seconds | images/s | ratio to plain loop | load avg |", "|---|---|---|---|---|---|",
           f"| plain loop, 1 process | {r['plain_images']} | {r['plain_s']:.1f} | {plain_rate:.1f} | 1.00 | "
           f"{r['load']} |"]
    for run in r["runs"]:
        st = run["stages"]
        rate = run["images"] / run["total_s"]
        md.append(f"| TFX end to end (ExampleGen {st.get('ImageExampleGen', 0):.1f} s + Transform "
                  f"{st.get('Transform', 0):.1f} s) | {run['images']} | {run['total_s']:.1f} | {rate:.1f} | "
                  f"{rate / plain_rate:.2f} | {run['load']} |")
    md.append(f"| TFX steady state | | | {steady:.1f} | {steady / plain_rate:.2f} | |" if steady > 0 else
              "| TFX steady state | | | not measurable: the larger run was not slower (use larger sizes) | | |")
    n15 = break_even(plain_rate, steady, fixed)
    ratio = steady / plain_rate
    md += ["", f"Fixed start-up of the two components: {fixed:.1f} s. End to end reaches 1.5x the plain loop from "
               + (f"about {n15:,.0f} images (CelebA has 202,599)." if n15 != float("inf") else "no dataset size."),
           "", f"Target >= 1.5x the plain loop on 2 cores (steady state): {'met' if ratio >= 1.5 else 'NOT met'} "
               f"({ratio:.2f}x).", ""]
    print("\n".join(md), flush=True)
    return md, recs


if __name__ == "__main__":
    raise SystemExit(main())
