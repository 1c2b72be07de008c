"""TF side of the inference benchmark: one variant per process (threading and grappler options are
process-wide and fixed at start-up), timed on LR squares, with its output fidelity against float32.

    python -m benchmarks.inference_tf --variant savedmodel_fp32 --sizes 128,256 --runs 5

Variants (VARIANTS): the exported SavedModel (the product path: models/export.py serving the inference
graph of models/inference) in float32 and with export.precision=bfloat16, the same model through
oneDNN's graph-level bfloat16 auto mixed precision, the Keras model, a Keras `mixed_bfloat16` rebuild,
XLA, the bare inference graph (batch norm folded, with and without bfloat16), TFLite.
Speed is timed on the paper's architecture with the preset's seeded initialisation (speed does not
depend on the values). The fidelity figures (PSNR cost against float32) need trained weights to mean
anything: --fidelity_model applies the same variant to a trained generator (a pushed SavedModel, with
its own configuration) and measures on real LR images.
"""
from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np

from benchmarks import common

VARIANTS = ("savedmodel_fp32", "savedmodel_bf16", "keras_fp32", "frozen_fp32", "xla_fp32", "folded_fp32", "amp_bf16",
            "savedmodel_amp_bf16", "frozen_amp_bf16", "mixed_bf16", "frozen_mixed_bf16", "xla_mixed_bf16",
            "folded_bf16", "folded_amp_bf16", "tflite_fp32")
AMP_VARIANTS = ("amp_bf16", "savedmodel_amp_bf16", "frozen_amp_bf16", "folded_amp_bf16")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variant", choices=VARIANTS, required=True)
    p.add_argument("--sizes", default="128,256", help="LR edge lengths, comma-separated")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="intra-op threads (default: nproc)")
    p.add_argument("--inter", type=int, default=1, help="inter-op threads")
    p.add_argument("--fidelity_dir", default="", help="LR images to measure the output change against "
                                                      "float32 on (e.g. Set5/LRx4); HR beside it in ..")
    p.add_argument("--fidelity_model", default="", help="trained SavedModel (models/export.py) the fidelity "
                                                        "figures use; default: the seeded initialisation")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.variant in AMP_VARIANTS + ("folded_bf16", "savedmodel_bf16"):
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    if args.variant == "savedmodel_bf16":
        from models.inference.precision import cpu_has_bf16

        if not cpu_has_bf16():
            print("SKIP: savedmodel_bf16: this CPU has no native bfloat16 (AVX512_BF16, AMX), where the export "
                  "refuses export.precision=bfloat16", flush=True)
            return 0
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.inter)

    from benchmarks import srresnet_arch

    cfg = srresnet_arch.bench_config()
    model = build_fp32(cfg)
    if args.fidelity_dir:
        fcfg, fmodel = (load_trained(args.fidelity_model) if args.fidelity_model else (cfg, model))
        # The float32 reference runs before the grappler option below exists: the option is process-wide
        # and would otherwise rewrite the reference to bfloat16 too (a cost of exactly 0).
        refs = reference_outputs(tf.function(lambda x: fmodel(x, training=False)), args.fidelity_dir, fcfg.scale)
    if args.variant in AMP_VARIANTS:
        # Grappler rewrites the float32 graph: oneDNN-supported ops to bfloat16, casts at the edges.
        tf.config.optimizer.set_experimental_options({"auto_mixed_precision_onednn_bfloat16": True})
    run = make_variant(args.variant, cfg, model)
    params = int(model.count_params())
    for size in [int(s) for s in args.sizes.split(",") if s]:
        x = tf.random.stateless_uniform([1, size, size, 3], seed=[1, 2])
        stats = common.time_calls(lambda x=x: run(x), args.warmup, args.runs)
        macs = srresnet_arch.conv_macs(lambda t: model(t, training=False), size, size)
        rec = {"bench": "inference", "side": "tf", "variant": args.variant, "size": size, "threads": args.threads,
               "inter": args.inter, "params": params, "macs": macs, "load": common.load_average(), **stats}
        print(f"tf {args.variant:20s} {size}x{size} LR: {common.fmt_ms(stats['median_s'])} ms/image "
              f"(median of {args.runs}), {1 / stats['median_s']:.2f} images/s, params {params:,}, "
              f"{macs / 1e9:.2f} GMAC; load {rec['load']}", flush=True)
        common.emit(rec)
    if args.fidelity_dir:
        frun = make_variant(args.variant, fcfg, fmodel) if args.fidelity_model else run
        common.emit({"bench": "fidelity", "side": "tf", "variant": args.variant,
                     "model": args.fidelity_model or f"{srresnet_arch.BENCH_PRESET}, untrained (seeded)",
                     **fidelity(frun, refs, args.fidelity_dir, fcfg.scale)})
    return 0


def build_fp32(cfg):
    import tf_keras as keras

    from models.networks import build_generator

    keras.utils.set_random_seed(0)
    return build_generator(cfg)


def load_trained(model_dir: str):
    """(config, Keras generator) of a SavedModel written by models/export.py: the architecture from the
    configuration it carries, the weights by variable name."""
    import json

    import tensorflow as tf

    from config import Config
    from models import export
    from models.networks import build_generator

    loaded = tf.saved_model.load(model_dir)
    cfg = Config.from_json(json.dumps(export.load_config_json(loaded)))
    model = build_generator(cfg)
    src = {v.name: v for v in loaded.generator.variables}
    for v in model.variables:
        v.assign(src[v.name])
    return cfg, model


def make_variant(name: str, cfg, model):
    """A callable float32 [1, H, W, 3] tensor -> numpy output for the named variant."""
    import tensorflow as tf

    if name in ("savedmodel_fp32", "savedmodel_bf16", "savedmodel_amp_bf16"):
        from contracts import signatures
        from models import export
        from models.networks import generator_size_multiple

        d = tempfile.mkdtemp(prefix="bench_sm_")
        precision = "bfloat16" if name == "savedmodel_bf16" else "float32"
        export.export_generator(model, d, cfg.override({"export.precision": precision}), generator_size_multiple(cfg))
        fn = tf.saved_model.load(d).signatures[signatures.RESTORE]
        return lambda x: fn(images=x)["images"].numpy()
    if name in ("keras_fp32", "amp_bf16", "xla_fp32"):
        f = tf.function(lambda x: model(x, training=False), jit_compile=name == "xla_fp32")
        return lambda x: f(x).numpy()
    if name in ("frozen_fp32", "frozen_amp_bf16"):
        return frozen(lambda x: model(x, training=False))
    if name in ("mixed_bf16", "xla_mixed_bf16", "frozen_mixed_bf16"):
        m = rebuild_mixed(cfg, model)
        fn = lambda x: tf.cast(m(x, training=False), tf.float32)  # noqa: E731
        if name == "frozen_mixed_bf16":
            return frozen(fn)
        f = tf.function(fn, jit_compile=name == "xla_mixed_bf16")
        return lambda x: f(x).numpy()
    if name in ("folded_fp32", "folded_bf16", "folded_amp_bf16"):
        from models.inference import srresnet

        f = tf.function(srresnet.inference_fn(model, cfg, tf.bfloat16 if name == "folded_bf16" else tf.float32))
        return lambda x: f(x).numpy()
    if name == "tflite_fp32":
        return tflite_runner(model)
    raise ValueError(name)


def frozen(fn):
    """`fn` as a frozen graph: variables become constants, which grappler folds and oneDNN caches."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    f = convert_variables_to_constants_v2(tf.function(fn).get_concrete_function(
        tf.TensorSpec([1, None, None, 3], tf.float32)))

    def run(x):
        y = f(x)
        return (y[0] if isinstance(y, (list, tuple)) else y).numpy()
    return run


def rebuild_mixed(cfg, model):
    import tf_keras as keras

    from models.networks import build_generator

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        m = build_generator(cfg)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    m.set_weights(model.get_weights())
    return m


def tflite_runner(model):
    """TFLite (XNNPACK delegate, float32) with the input resized per shape; threads = intra-op."""
    import tensorflow as tf

    f = tf.function(lambda x: model(x, training=False))
    cache = {}

    def run(x):
        shape = tuple(x.shape)
        if shape not in cache:
            conc = f.get_concrete_function(tf.TensorSpec(shape, tf.float32))
            conv = tf.lite.TFLiteConverter.from_concrete_functions([conc], f)
            interp = tf.lite.Interpreter(model_content=conv.convert(), num_threads=os.cpu_count())
            interp.allocate_tensors()
            cache[shape] = interp
        interp = cache[shape]
        interp.set_tensor(interp.get_input_details()[0]["index"], np.asarray(x))
        interp.invoke()
        return interp.get_tensor(interp.get_output_details()[0]["index"])
    return run


def _set(lr_dir: str, scale: int):
    """(name, LR uint8, HR uint8 cropped to scale x LR) of the PNGs in `lr_dir`, HR beside it in .."""
    from models import images

    hr_dir = os.path.dirname(os.path.normpath(lr_dir))
    for n in sorted(n for n in os.listdir(lr_dir) if n.lower().endswith(".png")):
        lr = images.read_rgb8(os.path.join(lr_dir, n))
        yield n, lr, images.read_rgb8(os.path.join(hr_dir, n))[: lr.shape[0] * scale, : lr.shape[1] * scale]


def _restore(fn, lr):
    import tensorflow as tf

    from models import images

    out = fn(tf.constant(images.uint8_to_float(lr)[None]))
    return images.float_to_uint8(np.clip(np.asarray(out, np.float32)[0], 0, 1))


def reference_outputs(reference, lr_dir: str, scale: int) -> dict:
    """The float32 model's uint8 outputs on the LR images, by file name."""
    return {n: _restore(reference, lr) for n, lr, _ in _set(lr_dir, scale)}


def fidelity(run, refs: dict, lr_dir: str, scale: int) -> dict:
    """Output change against float32 on real LR images: PSNR-Y of (variant vs float32 output), and the
    PSNR-Y difference both make against the HR images (the quality cost), published protocol."""
    from models import metrics

    vs_fp32, cost, per_image = [], [], {}
    for n, lr, hr in _set(lr_dir, scale):
        ref, out = refs[n], _restore(run, lr)
        p_vs = metrics.psnr_y(out, ref, scale)
        d = metrics.psnr_y(ref, hr, scale) - metrics.psnr_y(out, hr, scale)
        vs_fp32.append(p_vs)
        cost.append(d)
        per_image[n] = {"psnr_y_vs_fp32": p_vs, "psnr_y_cost": d}
    return {"psnr_y_vs_fp32_mean": float(np.mean(vs_fp32)), "psnr_y_cost_mean": float(np.mean(cost)),
            "psnr_y_cost_max": float(np.max(cost)), "images": per_image, "lr_dir": lr_dir}


if __name__ == "__main__":
    raise SystemExit(main())
