"""Reading instruction YAML files: their format, and every check a file must pass.

The format is described in ``task_instructions/README.md``. ``read_instruction_file`` collects
all of a file's problems, each with its line number, into one ``ConfigError``; mteb's task
registry is passed in by the caller (``linq_eval.prompts.instruction_sets``), so this module
never imports mteb.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from linq_eval.errors import ConfigError, did_you_mean

_REQUIRED_KEYS = ("name", "version", "source", "template", "tasks")
"""Top-level keys every instruction file has, and the only ones it may have."""

_ENTRY_KEYS = ("instruction", "parent", "borrowed_from", "reason")
"""Keys of a task entry written as a mapping (a plain string entry is just the instruction).

``parent``: the task this one is a versioned successor of (mteb lists it in the task's
``adapted_from``); its instruction must be the parent's, verbatim. ``borrowed_from``: a task
whose instruction this one reuses without descending from it; needs a ``reason``."""
_ORIGIN_KEYS = ("parent", "borrowed_from")
"""Entry keys that name the task an instruction comes from (at most one per entry)."""

_STR_TAG = "tag:yaml.org,2002:str"


_Registry = tuple[frozenset[str], Callable[[str, str], bool]]
"""mteb's task names and a ``(task, parent) -> bool`` check of its adapted_from /
superseded_by relation."""


def read_instruction_file(
    path: Path, *, expected_name: str | None = None, registry: _Registry | None = None
) -> dict[str, Any]:
    """Parse and validate one instruction file: every problem in one ``ConfigError``.

    ``registry``: None skips the registry checks. Returns the keyword arguments of an
    ``InstructionSet`` (name, version, source, template, instructions, origins).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read instruction file {str(path)!r}: {exc}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None

    file = _File()
    file.check_structure(root)
    file.check_origins(registry)
    name = file.values.get("name")
    if expected_name is not None and name is not None and name != expected_name:
        message = f"name {name!r} must equal the file stem {expected_name!r} (sets go by file name)"
        file.add(file.value_lines["name"], message)
    if registry is not None and file.task_lines:
        known = registry[0]
        for task, line in file.task_lines.items():
            if task not in known:
                close = did_you_mean(task, known)
                hint = f"; did you mean: {', '.join(repr(c) for c in close)}?" if close else ""
                file.add(line, f"task {task!r} is not an mteb task{hint}")

    if problems := sorted(file.problems, key=lambda p: p[0]):
        listing = "\n".join(f"  {path}:{line}: {msg}" for line, msg in problems)
        raise ConfigError(
            f"Instruction file {str(path)!r} has {len(problems)} problem(s):\n{listing}"
        )
    values = {key: file.values[key] for key in ("name", "version", "source", "template")}
    return {**values, "instructions": file.tasks, "origins": file.origins}


@dataclass
class _File:
    """What a file's node tree holds, checked: its valid values and tasks with their lines,
    the origins its entries name, and its problems as ``(line, message)``."""

    problems: list[tuple[int, str]] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)
    value_lines: dict[str, int] = field(default_factory=dict)
    tasks: dict[str, str] = field(default_factory=dict)
    task_lines: dict[str, int] = field(default_factory=dict)
    origins: dict[str, dict[str, str]] = field(default_factory=dict)

    def add(self, line: int, message: str) -> None:
        self.problems.append((line, message))

    def check_structure(self, root: yaml.Node | None) -> None:
        if not isinstance(root, yaml.MappingNode):
            line = root.start_mark.line + 1 if root is not None else 1
            self.add(line, f"the file must be a mapping with keys {list(_REQUIRED_KEYS)}")
            return
        seen: dict[str, int] = {}
        for key_node, value_node in root.value:
            line = key_node.start_mark.line + 1
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                self.add(line, "top-level keys must be plain strings")
                continue
            if key in seen:
                self.add(line, f"duplicate key {key!r} (first on line {seen[key]})")
                continue
            seen[key] = line
            if key not in _REQUIRED_KEYS:
                close = did_you_mean(key, _REQUIRED_KEYS)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                valid = ", ".join(_REQUIRED_KEYS)
                self.add(line, f"unknown key {key!r}{hint} (valid keys: {valid})")
                continue
            if key == "tasks":
                self.check_tasks(value_node)
                continue
            value_line = value_node.start_mark.line + 1
            problem = _value_problem(key, value_node)
            if problem is not None:
                self.add(value_line, problem)
                continue
            self.values[key] = value_node.value
            self.value_lines[key] = value_line
        for key in _REQUIRED_KEYS:
            if key not in seen:
                self.add(root.start_mark.line + 1, f"missing required key {key!r}")

    def check_tasks(self, node: yaml.Node) -> None:
        line = node.start_mark.line + 1
        if not isinstance(node, yaml.MappingNode):
            self.add(line, "'tasks' must be a mapping of task name -> instruction")
            return
        if not node.value:
            self.add(line, "'tasks' is empty")
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not _is_str(key_node) or not key_node.value.strip():
                self.add(line, "task names must be non-empty strings")
                continue
            task = key_node.value
            if task in self.task_lines:
                self.add(line, f"duplicate task {task!r} (first on line {self.task_lines[task]})")
                continue
            self.task_lines[task] = line
            if isinstance(value_node, yaml.MappingNode):
                value_node = self.check_entry(task, line, value_node)
                if value_node is None:
                    continue
            if not _is_str(value_node):
                self.add(line, f"instruction of {task!r} must be a string (quote it)")
                continue
            instruction = value_node.value
            if not instruction.strip():
                self.add(line, f"instruction of {task!r} is empty")
            elif instruction != instruction.strip():
                self.add(line, f"instruction of {task!r} has leading or trailing whitespace")
            else:
                self.tasks[task] = instruction

    def check_entry(self, task: str, task_line: int, node: yaml.MappingNode) -> yaml.Node | None:
        """A task entry written as a mapping: record its origin keys, return its instruction
        node."""
        entry: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            key = key_node.value if _is_str(key_node) else None
            if key not in _ENTRY_KEYS:
                close = did_you_mean(str(key), _ENTRY_KEYS)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                valid = ", ".join(_ENTRY_KEYS)
                self.add(
                    line,
                    f"unknown key {key!r} in the entry of {task!r}{hint} (valid keys: {valid})",
                )
            elif not _is_str(value_node) or not value_node.value.strip():
                self.add(line, f"{key!r} of {task!r} must be a non-empty string")
            else:
                entry[key] = value_node
        if "instruction" not in entry:
            self.add(task_line, f"the entry of {task!r} has no 'instruction'")
            return None
        origin = {k: v.value for k, v in entry.items() if k != "instruction"}
        if all(k in origin for k in _ORIGIN_KEYS):
            self.add(task_line, f"{task!r}: give either 'parent' or 'borrowed_from', not both")
        elif "borrowed_from" in origin and "reason" not in origin:
            self.add(task_line, f"{task!r}: 'borrowed_from' needs a 'reason'")
        if origin:
            self.origins[task] = origin
        return entry["instruction"]

    def check_origins(self, registry: _Registry | None) -> None:
        """An entry's instruction must equal its parent's (or lender's), verbatim; with the
        registry, mteb must list a ``parent`` as what the task is adapted from."""
        tasks = self.tasks
        for task, origin in self.origins.items():
            line = self.task_lines[task]
            for key in _ORIGIN_KEYS:
                source = origin.get(key)
                if source is None or task not in tasks:
                    continue
                if source not in tasks:
                    self.add(line, f"{key} {source!r} of {task!r} has no instruction here")
                elif tasks[task] != tasks[source]:
                    message = (
                        f"instruction of {task!r} must equal its {key} {source!r}'s, "
                        f"verbatim: {tasks[task]!r} != {tasks[source]!r}"
                    )
                    self.add(line, message)
                if key == "parent" and registry is not None and not registry[1](task, source):
                    message = (
                        f"mteb does not list {source!r} as a parent of {task!r} "
                        "(adapted_from / superseded_by); use 'borrowed_from' with a 'reason'"
                    )
                    self.add(line, message)


def _value_problem(key: str, node: yaml.Node) -> str | None:
    """What is wrong with the value of a top-level string key (None: nothing); a template
    uses ``{instruction}`` and no other field."""
    if not _is_str(node):
        shown = getattr(node, "value", "")
        shown = shown if isinstance(shown, str) else type(node).__name__
        return f"{key!r} must be a string (quote it), got {shown!r}"
    if not node.value.strip():
        return f"{key!r} must not be empty"
    if key != "template":
        return None
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(node.value) if f is not None}
    except ValueError:
        return "template is not a valid format string"
    if "instruction" not in fields:
        return "template must contain '{instruction}'"
    if fields - {"instruction"}:
        other = ", ".join(sorted(fields - {"instruction"}))
        return f"template may only use '{{instruction}}', not {other}"
    return None


def _is_str(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _STR_TAG


__all__ = ["read_instruction_file"]
