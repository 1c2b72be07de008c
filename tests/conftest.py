"""Shared test fixtures: paths to the embedded samples and to ../shared/data (skip when absent)."""
import os
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf_keras is this stack's Keras (DESIGN.md)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.abspath(os.path.join(REPO_ROOT, "..", "shared", "data"))


@pytest.fixture(scope="session")
def shared_data():
    """../shared/data (Set5, B100, faces, GoPro); tests that need it skip with a reason when absent."""
    if not os.path.isdir(SHARED_DATA):
        pytest.skip(f"benchmark images not present at {SHARED_DATA} (a fresh clone has no ../shared)")
    return SHARED_DATA


# Real Transform output built once per session (tests/fixtures_data.py): `transformed_sr`,
# `transformed_deblur`, shared by the trainer and evaluator tests.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixtures_data import transformed_deblur, transformed_sr  # noqa: E402,F401
