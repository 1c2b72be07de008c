"""The run configuration: a leaf that every layer imports (models, components, serving, pipeline, cli)
and that imports none of them. `Config` (config/run_config.py) and its sections (config/sections.py),
checks (config/checks.py), presets (config/presets/*.json)."""
from config.checks import ConfigError
from config.presets import PRESETS, preset
from config.run_config import REPO_ROOT, SAMPLE_DATA, Config

__all__ = ["Config", "ConfigError", "PRESETS", "preset", "REPO_ROOT", "SAMPLE_DATA"]
