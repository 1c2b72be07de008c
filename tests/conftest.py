"""Shared test fixtures. The core behaviour is tested on the committed samples (data/samples); only the
tests that reproduce published figures use ../shared/data (Set5, B100 and GoPro with their standard
files) and skip, with that reason, where it is absent (a user's clone)."""
import os
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from config import tf_env  # noqa: E402

tf_env.apply()  # as every process of the product: tf_keras, oneDNN kernels on

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# GAN_RESTORE_SHARED_DATA points elsewhere (a path that does not exist: the suite as a user's clone runs it).
SHARED_DATA = os.environ.get("GAN_RESTORE_SHARED_DATA") or os.path.abspath(
    os.path.join(REPO_ROOT, "..", "shared", "data"))


@pytest.fixture(scope="session")
def shared_data():
    """../shared/data, for the tests that reproduce published figures; they skip when it is absent."""
    if not os.path.isdir(SHARED_DATA):
        pytest.skip(f"reproduces a published figure on the benchmark images, which are not at {SHARED_DATA} "
                    f"(a fresh clone has no ../shared)")
    return SHARED_DATA


# Real Transform output built once per session (tests/fixtures_data.py): `transformed_sr`,
# `transformed_deblur`, shared by the trainer and evaluator tests.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixtures_data import transformed_deblur, transformed_sr  # noqa: E402,F401
