"""Planning cuts pipelines into stages at global steps and derives stable work locations."""

from __future__ import annotations

from shipyard.data.executor.plan import Stage, WorkLayout, fingerprint, plan_stages


def test_no_global_step_is_one_stage() -> None:
    assert plan_stages([False, False]) == [Stage(0, None, (0, 1), None)]


def test_global_steps_split_stages_and_apply_at_the_start_of_the_next() -> None:
    # normalize, exact_dedup*, filter, minhash*, train_tokenizer*, tokenize
    stages = plan_stages([False, True, False, True, True, False])
    assert stages == [
        Stage(0, None, (0,), 1),
        Stage(1, 1, (2,), 3),
        Stage(2, 3, (), 4),
        Stage(3, 4, (5,), None),
    ]
    assert [s.is_last for s in stages] == [False, False, False, True]


def test_fingerprint_ignores_execution_settings_but_not_steps() -> None:
    spec = {"input": {"uri": "a"}, "steps": [{"type": "normalize"}], "execution": {"workers": 1}}
    more_workers = {**spec, "execution": {"workers": 8}}
    other_steps = {**spec, "steps": []}
    assert fingerprint(spec) == fingerprint(more_workers)
    assert fingerprint(spec) != fingerprint(other_steps)


def test_cancel_cleanup_covers_every_published_prefix() -> None:
    layout = WorkLayout("file:///out", "abc")
    prefixes = layout.published_prefixes()
    assert "file:///out/data" in prefixes and "file:///out/tokens" in prefixes
    assert layout.root in prefixes and layout.manifest_uri == "file:///out/manifest.json"
    assert layout.quarantine(0, 3) == "file:///out/quarantine/stage-0-shard-00003.jsonl"
