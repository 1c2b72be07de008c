"""`gan-restore train`: the Trainer's `run_fn` outside TFX, on a Transform output (what a TFX Trainer
execution runs, with a real `FnArgs`), e.g. to resume or tune a run by hand:

    gan-restore train --transform-output <transform_graph> --train-files '<dir>/Split-train/*' \\
        --eval-files '<dir>/Split-eval/*' --serving-model-dir out/model --model-run-dir out/logs \\
        [--preset tiny --task sr --set train.gan_steps=10 | --config cfg.json]

Exit status 1 when training diverges (nothing is exported).
"""
from __future__ import annotations

from cli.config_args import add_config_arguments, config_from_args

HELP = "train and export a model from a Transform output, outside TFX (the Trainer's run_fn)"


def add_arguments(parser) -> None:
    parser.add_argument("--transform-output", default=None, help="the Transform graph directory (transform_fn/ ...)")
    parser.add_argument("--train-files", action="append", required=True,
                        help="transformed train examples (pattern; repeatable)")
    parser.add_argument("--eval-files", action="append", required=True,
                        help="transformed eval examples (pattern; repeatable)")
    parser.add_argument("--serving-model-dir", required=True, help="where the SavedModel is exported")
    parser.add_argument("--model-run-dir", required=True, help="TensorBoard logs")
    add_config_arguments(parser)


def run(args) -> int:
    from tfx.components.trainer.fn_args_utils import FnArgs

    from models.trainer import run_fn

    fn_args = FnArgs(train_files=args.train_files, eval_files=args.eval_files, transform_output=args.transform_output,
                     serving_model_dir=args.serving_model_dir, model_run_dir=args.model_run_dir,
                     custom_config={"config": config_from_args(args).to_json()})
    run_fn(fn_args)  # a diverged run (TrainingDiverged) ends the command with its one line, status 1: cli/main.py
    return 0
