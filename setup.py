"""GAN image restoration (4x super-resolution and motion deblurring) on TensorFlow Extended."""
from setuptools import find_packages, setup

setup(
    name="gan-restoration",
    version="0.1.0",
    description="TFX pipeline that trains, gates and serves SRGAN / DeblurGAN models",
    python_requires=">=3.10,<3.11",  # TFX 1.16 needs Python < 3.11 (docs/stack.md)
    packages=find_packages(include=["config*", "contracts*", "models*", "components*", "serving*", "pipeline*",
                                    "cli*"]),
    package_data={"config": ["presets/*.json"], "serving": ["deploy/*", "deploy/**/*"], "pipeline": ["*.pbtxt"]},
    install_requires=[
        "tfx==1.16.0",
        "tensorflow==2.16.2",
        "tf-keras==2.16.0",
        "tensorflow-transform==1.16.0",
        "tensorflow-model-analysis==0.47.1",
        "tensorflow-serving-api==2.16.1",
        "dill",  # tfx-bsl 1.16 imports it; recent Beam no longer depends on it
        "pillow",
        "simplejpeg",  # ingestion's strict JPEG check (components/image_check.py)
        "pandas",  # the C number parser of REST request bodies (serving/json_tensors.py)
        "numpy<2",
    ],
    extras_require={
        # Without the kfp extra the resolver picks an ancient kfp 1.x.
        "kfp": ["tfx[kfp]==1.16.0"],
        "dev": ["pytest", "pytest-timeout", "scikit-image", "ruff", "prometheus-client"],
    },
    entry_points={"console_scripts": ["gan-restore=cli.main:main"]},
)
