"""The container image's Python set: the tested working set (requirements.lock) plus TensorFlow's CUDA
wheels, so the image's TensorFlow finds the GPU whatever its base image carries. No Docker engine here:
the image is never built; what is checked is the set it installs, resolved with uv for its platform."""
import importlib.metadata
import os
import re
import subprocess

import pytest
from packaging.requirements import Requirement

from config import REPO_ROOT

IMAGE_LOCK = os.path.join(REPO_ROOT, "docker", "requirements-image.lock")


def pins(path):
    with open(path) as f:
        return dict(re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", f.read(), re.M))


def cuda_requirements():
    """TensorFlow's own `and-cuda` extra, from the installed wheel's metadata."""
    reqs = [Requirement(r) for r in importlib.metadata.requires("tensorflow")]
    return [r for r in reqs if r.marker and r.marker.evaluate({"extra": "and-cuda"})
            and not r.marker.evaluate({"extra": ""})]


def test_image_set_is_the_tested_set_plus_tensorflows_cuda_wheels():
    image, tested = pins(IMAGE_LOCK), pins(os.path.join(REPO_ROOT, "requirements.lock"))
    assert {k: image.get(k) for k in tested} == tested  # every tested pin, unchanged
    cuda = cuda_requirements()
    assert {r.name for r in cuda} >= {"nvidia-cudnn-cu12", "nvidia-cublas-cu12", "nvidia-cuda-runtime-cu12"}
    for r in cuda:
        assert r.name in image and r.specifier.contains(image[r.name]), r
    assert set(image) - set(tested) == {r.name for r in cuda}  # nothing else comes along
    assert image["tensorflow"] == importlib.metadata.version("tensorflow")
    dockerfile = open(os.path.join(REPO_ROOT, "docker", "Dockerfile")).read()
    assert "COPY docker/requirements-image.lock" in dockerfile and "-r /pipeline/requirements-image.lock" in dockerfile


@pytest.mark.slow
def test_image_requirements_resolve_with_uv_for_linux_x86_64(tmp_path):
    """`make image-lock` (uv, Linux x86_64 / manylinux_2_28, nothing installed) resolves
    docker/requirements-image.in to exactly the committed image lock (needs the package index)."""
    out = tmp_path / "image.lock"
    run = subprocess.run(["make", "--no-print-directory", "image-lock", f"IMAGE_LOCK={out}"], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert pins(out) == pins(IMAGE_LOCK)
    assert pins(out)["nvidia-cudnn-cu12"].startswith("8.9")  # cuDNN 8.9 / CUDA 12.3: TF 2.16's build
