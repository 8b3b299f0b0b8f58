"""The code's own layering rules, read from its files: no module imports another module's underscore names."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("trainers", "orchestrator", "analysis", "layout", "bench")


def private_imports(package: str) -> list[str]:
    """``file:line name`` for each ``from <project module> import _name`` under ``package``."""
    out = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            internal = isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "").split(".")[0]
                                                             in ("trainers", "orchestrator", "analysis", "layout"))
            if internal:
                out += [f"{path.relative_to(ROOT)}:{node.lineno} {a.name}" for a in node.names
                        if a.name.startswith("_")]
    return out


def test_no_module_imports_another_modules_private_names():
    for package in PACKAGES:
        assert private_imports(package) == []


def test_the_check_sees_a_private_import(tmp_path, monkeypatch):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("from .b import _hidden, shown\nfrom trainers.train import run_trial\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert private_imports("pkg") == ["pkg/a.py:1 _hidden"]
