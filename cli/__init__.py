"""The `gan-restore` command line: the top layer. One module per subcommand (HELP, add_arguments,
run); each imports TensorFlow/TFX inside `run`, so `--help` stays fast. Nothing imports this package."""
