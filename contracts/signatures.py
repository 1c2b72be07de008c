"""The SavedModel contract of a pushed model (models/export.py writes it; the Evaluator, the clients
and the servers call it; docs/architecture.md):

`serving_default`: image_bytes string [N] (encoded PNG/JPEG) -> image_bytes (PNG), height, width.
`restore`:         images float32 [N, H, W, 3] in [0, 1] -> images float32 [N, H*s, W*s, 3].
The run configuration travels in the SavedModel as the string variable `config_json`.
"""
SERVING = "serving_default"
RESTORE = "restore"

BYTES = "image_bytes"  # serving_default's input and output (TF Serving's `_bytes` suffix: base64 in REST)
HEIGHT = "height"
WIDTH = "width"
IMAGES = "images"  # restore's input and output

CONFIG_VARIABLE = "config_json"
# Its key in the SavedModel's variables checkpoint (read without loading the graph).
CONFIG_CHECKPOINT_KEY = f"{CONFIG_VARIABLE}/.ATTRIBUTES/VARIABLE_VALUE"
