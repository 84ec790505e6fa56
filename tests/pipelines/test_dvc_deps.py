"""dvc.yaml declares, for every stage, every package folder and edge module whose code the
stage runs (found from the imports), so a code change reruns the stages it affects."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _module_file(module: str) -> Path | None:
    path = SRC.joinpath(*module.split("."))
    if (path / "__init__.py").exists():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").exists() else None


def _imports(path: Path) -> set[str]:
    """leadscore modules imported anywhere in the file (function-level imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("leadscore"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names
                      if _module_file(f"{node.module}.{a.name}")}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("leadscore")}
    return found


def _dep_of(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) < 2:
        return None
    folder = SRC / "leadscore" / parts[1]
    return f"src/leadscore/{parts[1]}" + ("" if folder.is_dir() else ".py")


# code a stage runs without importing it: MLflow executes the exported model's code file
RUNS_ALSO = {"leadscore.serve.batch": ["leadscore.serve.model_code"],
             "leadscore.serve.export": ["leadscore.serve.model_code"]}


def code_deps(stage_file: Path) -> set[str]:
    """Folders / edge modules whose modules a stage imports, directly or through others."""
    todo, seen = list(_imports(stage_file)), set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        todo.extend(".".join(parts[:i]) for i in range(2, len(parts)))  # parent packages run too
        todo.extend(RUNS_ALSO.get(module, []))
        if (f := _module_file(module)) is not None:
            todo.extend(_imports(f))
    return {d for m in seen if (d := _dep_of(m)) is not None}


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_declares_the_code_it_runs(name):
    stage = STAGES[name]
    entry = ROOT / "pipelines" / f"{name}.py"
    assert f"python -m pipelines.{name} " in stage["cmd"] + " "  # stage name == module name
    declared = {str(d) for d in stage["deps"]}
    assert f"pipelines/{name}.py" in declared
    missing = sorted(code_deps(entry) - declared)
    assert missing == [], f"dvc.yaml stage {name}: add {missing} to deps"


def test_no_code_dep_points_at_a_missing_path():
    for name, stage in STAGES.items():
        for dep in map(str, stage["deps"]):
            if dep.startswith(("src/", "pipelines/")):  # data deps are written by earlier stages
                assert (ROOT / dep).exists(), f"dvc.yaml stage {name}: {dep} does not exist"
