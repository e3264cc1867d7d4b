"""Reports: JSON round trip, the comparison table (Markdown and rich) and the dimension chart PNG."""

from __future__ import annotations

import io
import math

import pytest
from rich.console import Console

from shipyard.errors import InvalidArgument
from shipyard.evaluation.chart import dimension_chart
from shipyard.evaluation.report import (
    EvaluationReport,
    TaskReport,
    compare_reports,
    read_report,
    write_report,
)
from shipyard.evaluation.types import SampleRecord
from shipyard.storage import LocalStorage, from_local_path


def report(model: str, acc: float, dims: dict[str, float]) -> EvaluationReport:
    record = SampleRecord("hellaswag/test/0", "Q", "A", "A", True, extra={"metrics": {"acc": 1.0}})
    tasks = (
        TaskReport(
            "hellaswag",
            {"acc": acc, "acc_norm": acc + 0.1},
            {"acc": 0.05, "acc_norm": 0.04},
            "acc_norm",
            ("reasoning", "language"),
            100,
            records=(record,),
        ),
        TaskReport("mmlu_anatomy", {"acc": 0.3}, {"acc": 0.1}, "acc", ("knowledge",), 10, group="mmlu"),
        TaskReport("mmlu", {"acc": 0.3}, {"acc": 0.1}, "acc", ("knowledge",), 10, subtasks=("mmlu_anatomy",)),
        TaskReport("mt_bench", {}, {}, "", ("language",), 3, num_failed=1, needs_judge=True),
    )
    return EvaluationReport(model, f"id:{model}", {"limit": 3}, tasks, dims, {"totalSeconds": 1.0}, "now")


def test_report_round_trips_through_storage(tmp_path) -> None:  # type: ignore[no-untyped-def]
    original = report("base", 0.25, {"reasoning": 0.3})
    uri = write_report(original, LocalStorage(), from_local_path(tmp_path))
    back = read_report(LocalStorage(), uri)
    assert (
        back.scores()
        == original.scores()
        == {"hellaswag/acc": 0.25, "hellaswag/acc_norm": 0.35, "mmlu_anatomy/acc": 0.3, "mmlu/acc": 0.3}
    )
    assert back.num_failed == 1 and back.task("mmlu").subtasks == ("mmlu_anatomy",)
    assert (tmp_path / "samples/hellaswag.jsonl").read_text().count("\n") == 1
    with pytest.raises(InvalidArgument, match="is not an evaluation report"):
        (tmp_path / "bad.json").write_text("{}")
        read_report(LocalStorage(), from_local_path(tmp_path / "bad.json"))


def test_comparison_table_rows_tasks_columns_models() -> None:
    table = compare_reports([report("base", 0.25, {}), report("tuned", 0.5, {})], labels=["before", "after"])
    assert table.models == ("before", "after")
    assert table.rows == (("hellaswag", "acc"), ("hellaswag", "acc_norm"), ("mmlu", "acc"))  # subjects folded
    md = table.markdown().splitlines()
    assert md[0] == "| task | metric | before | after |"
    assert md[2] == "| hellaswag | acc | 0.2500 ± 0.0500 | 0.5000 ± 0.0500 |"
    console = Console(file=io.StringIO(), width=120)
    console.print(table.rich_table())
    assert "0.5000" in console.file.getvalue()  # type: ignore[attr-defined]
    assert compare_reports([report("a", 0.1, {})], include_subtasks=True).rows[2] == ("mmlu_anatomy", "acc")
    nan_table = compare_reports([report("a", math.nan, {})])
    assert "| hellaswag | acc | - |" in nan_table.markdown()


def test_dimension_chart_is_a_png_radar_or_bars() -> None:
    dims = {"reasoning": 0.3, "language": 0.5, "knowledge": 0.4, "math": 0.1}
    radar = dimension_chart([report("base", 0.2, dims), report("tuned", 0.3, {**dims, "math": 0.2})])
    assert radar.startswith(b"\x89PNG\r\n\x1a\n") and len(radar) > 5_000
    bars = dimension_chart([report("base", 0.2, {"reasoning": 0.3})])
    assert bars.startswith(b"\x89PNG")
    with pytest.raises(InvalidArgument, match="at least 3 dimensions"):
        dimension_chart([report("base", 0.2, {"reasoning": 0.3})], kind="radar")
    with pytest.raises(InvalidArgument, match="no report has a dimension"):
        dimension_chart([report("base", 0.2, {})])
