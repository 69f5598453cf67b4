"""Verbatim third-party files (see README.md) and the way tests run their functions."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent


def functions(file: str | Path, names: tuple[str, ...], **namespace: Any) -> dict[str, Any]:
    """The top-level functions and classes `names` of `file` — a verbatim copy here
    (relative to this directory) or an installed package's file (an absolute path) —
    compiled unchanged in a namespace holding `namespace` (what they use), without
    importing the rest of the package."""
    tree = ast.parse((HERE / file).read_text())
    wanted = [node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
              and node.name in names]
    assert {n.name for n in wanted} == set(names), f"{file} no longer defines {set(names) - {n.name for n in wanted}}"
    exec(compile(ast.Module(body=wanted, type_ignores=[]), str(file), "exec"), namespace)
    return {name: namespace[name] for name in names}
