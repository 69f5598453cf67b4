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
