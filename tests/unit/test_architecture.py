"""House rules that keep the codebase in shape, checked on every run."""

from __future__ import annotations

import ast
import pathlib

LIBS = pathlib.Path(__file__).resolve().parents[2] / "libs" / "shipyard"


def _modules() -> list[pathlib.Path]:
    return [p for p in LIBS.rglob("*.py") if "api" not in p.relative_to(LIBS).parts]


def test_only_envs_reads_environment_variables() -> None:
    offenders = []
    for path in _modules():
        if path.name == "envs.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb"):
                offenders.append(f"{path.relative_to(LIBS)}:{node.lineno}")
    assert offenders == [], f"read environment variables in shipyard/envs.py only: {offenders}"


def test_every_module_says_what_it_owns() -> None:
    missing = [
        str(p.relative_to(LIBS))
        for p in _modules()
        if p.stat().st_size > 0 and ast.get_docstring(ast.parse(p.read_text())) is None
    ]
    assert missing == [], f"modules without a docstring: {missing}"
