"""An IngestJob is validated whole before any work, and every error names its field."""

from __future__ import annotations

import pytest

from shipyard.data.spec import build_steps, load_job_file, parse_job, parse_spec
from shipyard.errors import InvalidArgument


def _job(**spec: object) -> dict:
    base = {"input": {"uri": "/data/in"}, "output": {"uri": "/data/out"}, "steps": []}
    base.update(spec)
    return {
        "apiVersion": "shipyard.dev/v1alpha1",
        "kind": "IngestJob",
        "metadata": {"name": "j"},
        "spec": base,
    }


def _fields(exc: pytest.ExceptionInfo[InvalidArgument]) -> dict[str, str]:
    return {v.field: v.description for v in exc.value.violations}


def test_camel_and_snake_case_parameters_are_the_same_spec() -> None:
    def length_params(**params: object) -> object:
        steps = [{"type": "length", **params}]
        spec = parse_spec({"input": {"uri": "/x"}, "output": {"uri": "/y"}, "steps": steps})
        return build_steps(spec)[0].params

    assert length_params(minChars=5) == length_params(min_chars=5) != length_params()


def test_unknown_step_names_the_field_suggests_the_closest_and_lists_choices() -> None:
    with pytest.raises(InvalidArgument) as exc:
        parse_job(_job(steps=[{"type": "normalize"}, {"type": "minhash_dedupe"}]))
    msg = _fields(exc)["spec.steps[1].type"]
    assert "'minhash_dedup'" in msg and "valid steps:" in msg and "exact_dedup" in msg


def test_bad_step_parameter_names_step_index_and_parameter() -> None:
    with pytest.raises(InvalidArgument) as exc:
        parse_job(_job(steps=[{"type": "minhash_dedup", "bands": "many"}, {"type": "length", "bogus": 1}]))
    fields = _fields(exc)
    assert "spec.steps[0].bands" in fields
    assert "spec.steps[1].bogus" in fields and "not permitted" in fields["spec.steps[1].bogus"].lower()


def test_all_errors_are_reported_at_once() -> None:
    with pytest.raises(InvalidArgument) as exc:
        parse_job(_job(steps=[{"type": "nope"}, {"type": "tokenize"}]))
    fields = _fields(exc)
    assert "spec.steps[0].type" in fields
    assert (
        "spec.steps[1].tokenizerUri" in fields and "train_tokenizer" in fields["spec.steps[1].tokenizerUri"]
    )


def test_bad_output_format_and_metadata_name() -> None:
    doc = _job(output={"uri": "/o", "format": "csv"})
    doc["metadata"]["name"] = "Not_A_Label"
    with pytest.raises(InvalidArgument) as exc:
        parse_job(doc)
    fields = _fields(exc)
    assert "spec.output.format" in fields and "metadata.name" in fields


def test_yaml_file_errors_name_the_file(tmp_path) -> None:
    bad = tmp_path / "job.yaml"
    bad.write_text("spec: [unclosed")
    with pytest.raises(InvalidArgument) as exc:
        load_job_file(bad)
    assert "file" in _fields(exc)
    with pytest.raises(InvalidArgument):
        load_job_file(tmp_path / "missing.yaml")
