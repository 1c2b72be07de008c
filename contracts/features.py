"""Feature names of the tf.Examples between components (docs/architecture.md).

ImageExampleGen writes ID, IMAGE (the HR image, or the sharp frame of a pair), BLUR (the blurred frame
of a real pair only), HEIGHT, WIDTH, SCENE. Transform turns each into ID, TARGET, DEGRADED (both PNG)
and, with `data.dataset_mean`, TARGET_MEAN; the Trainer and the Evaluator read those.
"""
ID = "id"
IMAGE = "image"
BLUR = "blur"
HEIGHT = "height"
WIDTH = "width"
SCENE = "scene"

TARGET = "target"
DEGRADED = "degraded"
TARGET_MEAN = "target_mean"
TRANSFORMED = (ID, TARGET, DEGRADED)  # + TARGET_MEAN with data.dataset_mean
