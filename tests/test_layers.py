"""The layers point down (docs/architecture.md): every import of a project package, at module level or
inside a function, goes to the same layer or one below."""
import ast
import os

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# package -> layer; a package may import packages of a lower (or its own) layer only.
LAYERS = {"config": 1, "contracts": 2, "models": 3, "components": 4, "serving": 4, "pipeline": 5, "cli": 6}
# Same layer, still not allowed: serving and the TFX components stay independent of each other.
FORBIDDEN = {("serving", "components"), ("components", "serving")}


def _imports(path):
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((alias.name.split(".")[0], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0], node.lineno


def _modules(package):
    for dirpath, _, files in os.walk(os.path.join(REPO_ROOT, package)):
        yield from (os.path.join(dirpath, f) for f in sorted(files) if f.endswith(".py"))


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_imports_point_down(package):
    wrong = []
    for path in _modules(package):
        for target, line in _imports(path):
            if target in LAYERS and (LAYERS[target] > LAYERS[package] or (package, target) in FORBIDDEN):
                wrong.append(f"{os.path.relpath(path, REPO_ROOT)}:{line} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_the_configuration_is_a_leaf():
    for path in _modules("config"):
        assert {t for t, _ in _imports(path) if t in LAYERS} <= {"config"}, path
