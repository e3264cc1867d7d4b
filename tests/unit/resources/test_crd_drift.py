"""The CRDs checked into the chart are what the models generate (`python tools/gen_crds.py` fixes it)."""

from __future__ import annotations

import importlib.util
import pathlib
import sys
from types import ModuleType

REPO = pathlib.Path(__file__).resolve().parents[3]


def _gen_crds() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_crds", REPO / "tools" / "gen_crds.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_crds", module)
    spec.loader.exec_module(module)
    return module


def test_checked_in_crds_match_the_models() -> None:
    diffs = _gen_crds().check()
    assert not diffs, "CRDs are stale; run `python tools/gen_crds.py`:\n" + "".join(diffs)[:4000]


def test_check_reports_drift_with_a_diff(tmp_path: pathlib.Path) -> None:
    gen = _gen_crds()
    gen.write(tmp_path)
    assert gen.check(tmp_path) == []
    stale = tmp_path / "trainingjobs.yaml"
    stale.write_text(stale.read_text().replace("default: 32", "default: 64"))
    (tmp_path / "leftover.yaml").write_text("kind: Old\n")
    diffs = gen.check(tmp_path)
    assert len(diffs) == 2
    leftover, changed = diffs  # sorted by file name
    assert "leftover.yaml (checked in)" in leftover and "-kind: Old" in leftover
    assert "-                    default: 64\n+                    default: 32" in changed


def test_check_command_exits_1_on_drift(tmp_path: pathlib.Path, monkeypatch, capsys) -> None:
    gen = _gen_crds()
    monkeypatch.setattr(gen, "OUT", tmp_path)
    gen.write(tmp_path)
    assert gen.main(["--check"]) == 0
    (tmp_path / "modeldeployments.yaml").unlink()
    assert gen.main(["--check"]) == 1
    out = capsys.readouterr()
    assert "modeldeployments.yaml" in out.out and "run `python tools/gen_crds.py`" in out.err
