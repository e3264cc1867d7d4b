"""The task registry: every ``*.yaml`` in this folder (and any extra folder a caller names) is a task.

    registry = TaskRegistry.builtin()
    specs = registry.resolve(["gsm8k", "mmlu"])   # a group name expands to its subtasks

A file with ``subtasks`` expands to one task per value (``mmlu`` -> ``mmlu_abstract_algebra``, ...) and
registers the file's name as a group. Unknown names raise ``InvalidArgument`` suggesting the closest.
"""

from __future__ import annotations

import difflib
import functools
import pathlib
from collections.abc import Iterable, Mapping

import jinja2
import jinja2.sandbox
import pydantic
import yaml

from shipyard.errors import FieldViolation, InvalidArgument, from_pydantic
from shipyard.evaluation.tasks.processors import PROCESSORS
from shipyard.evaluation.tasks.spec import Metric, TaskSpec
from shipyard.evaluation.types import OutputType

__all__ = ["TaskRegistry", "TaskSpec", "load_task_file"]

BUILTIN_DIR = pathlib.Path(__file__).parent


def _render_static(text: str, values: Mapping[str, str]) -> str:
    # Paths and descriptions see only the subtask's values; they are fixed once at load time.
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
    )
    return env.from_string(text).render(**values)


def _expand(spec: TaskSpec) -> list[TaskSpec]:
    if spec.subtasks is None:
        return [spec]
    expanded = []
    for key, display in spec.subtasks.values.items():
        values = {"subject": key, "subject_name": display}
        splits = {
            name: src.model_copy(update={"path": _render_static(src.path, values)})
            for name, src in spec.splits.items()
        }
        expanded.append(
            spec.model_copy(
                update={
                    "name": f"{spec.name}_{key}",
                    "splits": splits,
                    "description": _render_static(spec.description, values),
                    "subtasks": None,
                    "group": spec.name,
                    "subject": key,
                    "subject_name": display,
                }
            )
        )
    return expanded


def _check(spec: TaskSpec, source: str) -> None:
    problems = []
    if spec.process is not None and spec.process not in PROCESSORS:
        problems.append(("process", f"unknown processor {spec.process!r}; known: {sorted(PROCESSORS)}"))
    if "test" not in spec.splits:
        problems.append(("splits", "a task needs a 'test' split"))
    names = {m.name for m in spec.metrics}
    choice_metrics = {Metric.ACC, Metric.ACC_NORM, Metric.MC2}
    if spec.output_type is OutputType.MULTIPLE_CHOICE and not names <= choice_metrics:
        problems.append(("metrics", "multiple_choice tasks score acc, acc_norm or mc2"))
    if spec.output_type is OutputType.CODE and (names != {Metric.PASS_AT_K} or not spec.code_program):
        problems.append(("metrics", "code tasks score pass@k and need a code_program template"))
    for m in spec.metrics:
        if m.name is Metric.PASS_AT_K and max(m.k) > spec.generation.repeats:
            problems.append(("generation.repeats", f"pass@{max(m.k)} needs at least {max(m.k)} repeats"))
    if problems:
        raise InvalidArgument(
            f"invalid task file {source}", violations=[FieldViolation(f, d) for f, d in problems]
        )


def load_task_file(path: pathlib.Path) -> list[TaskSpec]:
    """Parse and validate one task YAML; returns the task, or its subtasks when it declares some."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InvalidArgument.field(path.name, f"not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise InvalidArgument.field(path.name, "a task file must be a YAML mapping")
    try:
        spec = TaskSpec.model_validate(raw)
    except pydantic.ValidationError as exc:
        raise from_pydantic(exc, prefix=path.name) from exc
    _check(spec, path.name)
    return _expand(spec)


class TaskRegistry:
    """Task specs by name plus groups (name -> subtask names); immutable once built."""

    def __init__(self, specs: Iterable[TaskSpec]) -> None:
        self._tasks: dict[str, TaskSpec] = {}
        groups: dict[str, list[str]] = {}
        for spec in specs:
            if spec.name in self._tasks:
                raise InvalidArgument.field("name", f"task {spec.name!r} is defined twice")
            self._tasks[spec.name] = spec
            if spec.group is not None:
                groups.setdefault(spec.group, []).append(spec.name)
        self._groups = {g: tuple(names) for g, names in groups.items()}

    @classmethod
    def from_dirs(cls, *dirs: pathlib.Path) -> TaskRegistry:
        """Every ``*.yaml`` in ``dirs``, in file-name order."""
        return cls(spec for d in dirs for p in sorted(d.glob("*.yaml")) for spec in load_task_file(p))

    @staticmethod
    @functools.cache
    def builtin() -> TaskRegistry:
        """The tasks shipped with Shipyard (parsed once per process; the registry is immutable)."""
        return TaskRegistry.from_dirs(BUILTIN_DIR)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._tasks)

    @property
    def groups(self) -> Mapping[str, tuple[str, ...]]:
        return dict(self._groups)

    def get(self, name: str, *, field: str = "tasks") -> TaskSpec:
        """The task called ``name``; ``InvalidArgument`` naming the closest known task otherwise."""
        spec = self._tasks.get(name)
        if spec is None:
            known = [*self._tasks, *self._groups]
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise InvalidArgument.field(field, f"unknown task {name!r}{hint}")
        return spec

    def resolve(self, names: Iterable[str], *, field: str = "tasks") -> list[TaskSpec]:
        """Task specs for task or group names, in order, each once."""
        out: dict[str, TaskSpec] = {}
        for name in names:
            for member in self._groups.get(name, (name,)):
                out.setdefault(member, self.get(member, field=field))
        return list(out.values())
