"""The package's shape (DESIGN.md, "Layers"): no import circle, each layer importing only
those below it, and `import icrm` pulling in no HTTP server and no SDK."""

import ast
import os
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "icrm"

# Layers, top to bottom; a module may import its own layer's modules and lower layers'.
LAYERS = {
    "interfaces": ("cli", "service", "mock", "evaluation", "integrations", "report", "testing"),
    "reward model": ("reward_model", "core", "prompt", "methods", "rm_types", "feedback", "parsing", "shots",
                     "template", "conversation", "neutralize", "inputs", "scoring", "config"),
    "batch": ("batch",),
    "engines": ("engines",),
    "base": ("errors", "settings", "logs", "_loop"),
}
RANK = {name: rank for rank, names in enumerate(LAYERS.values()) for name in names}


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path):
    """Absolute names of the icrm modules `path` imports (TYPE_CHECKING blocks included)."""
    tree = ast.parse(path.read_text())
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.startswith("icrm"):
                found.add(target)
                found.update(f"{target}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("icrm"))
    return found


def graph():
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in imports(path) if m in modules and m != name} for name, path in modules.items()}


def test_no_import_circle():
    edges = graph()
    state = {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if nxt.startswith(node + "."):  # a package importing its own submodules
                continue
            if state.get(nxt) == "open":
                cycle = trail[trail.index(nxt):] + [nxt]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])


def layer(module):
    parts = module.split(".")
    return RANK.get(parts[1]) if len(parts) > 1 else None


def test_each_layer_imports_only_itself_and_lower_layers():
    wrong = []
    for module, targets in graph().items():
        own = layer(module)
        for target in targets:
            if own is not None and layer(target) is not None and layer(target) < own:
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_import_icrm_loads_no_http_server_and_no_sdk():
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", "import icrm"], capture_output=True, text=True,
                            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    loaded = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line}
    assert {"fastapi", "uvicorn", "openai", "anthropic", "datasets", "torch"} & loaded == set()


def test_no_module_is_over_450_lines():
    long = {str(p.relative_to(PACKAGE.parent)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 450}
    assert long == {}
