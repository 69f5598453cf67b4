"""The `rewardbench` package's own scoring code, for tests that compare icrm with it.

The package cannot be imported without torch, fastchat and transformers, so its source
is read and the named top-level definitions compiled from it, with the names they use
supplied. CI installs it with `pip install --no-deps rewardbench==0.1.4` (`.ci/run`).
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path
from typing import Any

import pytest

SPEC = importlib.util.find_spec("rewardbench")
needs_rewardbench = pytest.mark.skipif(
    SPEC is None, reason="rewardbench is not installed: pip install --no-deps rewardbench==0.1.4")


def package_source(name: str) -> str:
    """The text of `name` (e.g. ``utils.py``) in the installed package."""
    return (Path(next(iter(SPEC.submodule_search_locations))) / name).read_text()


def package_definitions(file: str, names: tuple[str, ...], **namespace: Any) -> dict[str, Any]:
    """The functions and constants called `names` in the package's `file`, compiled from
    its source in a namespace holding `namespace` (the imports they need)."""
    tree = ast.parse(package_source(file))
    wanted = [node for node in tree.body
              if getattr(node, "name", None) in names
              or (isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) in names)]
    found = {getattr(n, "name", None) or n.targets[0].id for n in wanted}
    assert found == set(names), f"{file} no longer defines {set(names) - found}"
    exec(compile(ast.Module(body=wanted, type_ignores=[]), f"rewardbench/{file}", "exec"), namespace)
    return {name: namespace[name] for name in names}


def script_function(script: str, name: str, **namespace: Any) -> Any:
    """The function `name` defined anywhere (nested too) in the package's
    ``scripts/<script>`` (installed beside it), compiled in `namespace`."""
    path = Path(next(iter(SPEC.submodule_search_locations))).parent / "scripts" / script
    tree = ast.parse(path.read_text())
    found = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == name]
    assert len(found) == 1, f"scripts/{script} defines {name} {len(found)} times"
    exec(compile(ast.Module(body=found, type_ignores=[]), f"scripts/{script}", "exec"), namespace)
    return namespace[name]
