"""The contracts between modules, one module each: feature names (features.py), the SavedModel
signatures (signatures.py), TF Serving's model directory layout (serving_layout.py) and the dataset
layouts with the one reject vocabulary (datasets.py). Below models, components, serving and the
pipeline; imports only the configuration leaf. docs/architecture.md describes them."""
