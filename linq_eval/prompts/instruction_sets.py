"""Per-task instruction sets: YAML files in ``task_instructions/``, keyed by exact mteb task names.

An instruction set maps each task to one instruction sentence; its ``template`` turns that
sentence into the prefix an instructed input receives. Which inputs are instructed is the
policy's business (``linq_eval.model.policies``), not the set's. A task without an instruction is an
error, never a silent generic fallback.

    from linq_eval.prompts.instruction_sets import load_instruction_set
    e5 = load_instruction_set("e5")
    e5.prefix("SciFact")            # 'Instruct: Given a scientific claim, ...\\nQuery: '

The prefixes each task's inputs receive under a policy, and their hash, come from
``linq_eval.prompts.builder``; task selection from ``linq_eval.benchmarks``.

mteb is imported lazily inside the functions that need it: importing this module must work on a
machine without mteb.
"""

from __future__ import annotations

import functools
import os
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import yaml

from linq_eval import paths
from linq_eval.benchmarks import DEFAULT_BENCHMARK, mteb_task_names, task_names
from linq_eval.errors import ConfigError, UnknownNameError, UnknownNamesError, did_you_mean

DEFAULT_INSTRUCTIONS_DIR = paths.instructions_root()
"""The repository's ``task_instructions/`` folder."""
INSTRUCTIONS_DIR_ENV = "LINQ_EVAL_INSTRUCTIONS_DIR"
"""Environment variable that points the registry at another folder."""
INSTRUCTIONS_DIR = Path(os.environ.get(INSTRUCTIONS_DIR_ENV) or DEFAULT_INSTRUCTIONS_DIR)
"""Where named instruction sets live (as of import; ``instructions_dir()`` rereads the env)."""

REQUIRED_KEYS = ("name", "version", "source", "template", "tasks")
"""Top-level keys every instruction file has, and the only ones it may have."""

_STR_TAG = "tag:yaml.org,2002:str"
_YAML_SUFFIXES = (".yaml", ".yml")


def instructions_dir() -> Path:
    """The folder of named instruction sets: ``$LINQ_EVAL_INSTRUCTIONS_DIR`` or the repo's."""
    return Path(os.environ.get(INSTRUCTIONS_DIR_ENV) or DEFAULT_INSTRUCTIONS_DIR)


@dataclass(frozen=True)
class InstructionSet:
    """One instruction file: a versioned mapping of mteb task names to instructions."""

    name: str
    """Set name (the file stem for sets in ``task_instructions/``); recorded in every result."""
    version: str
    """Version of the file's content; bump it whenever an instruction changes."""
    source: str
    """Provenance: where the strings come from (repository, file, commit)."""
    template: str
    """Prefix of an instructed input; ``{instruction}`` is replaced by the task's instruction."""
    instructions: Mapping[str, str] = field(repr=False)
    """Exact mteb task name -> instruction sentence (read-only)."""
    path: Path | None = None
    """The file it was loaded from (None when built in code)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "instructions", MappingProxyType(dict(self.instructions)))

    def __hash__(self) -> int:
        pairs = tuple(sorted(self.instructions.items()))
        return hash((self.name, self.version, self.template, pairs))

    @property
    def task_names(self) -> list[str]:
        """The tasks this set has an instruction for, sorted."""
        return sorted(self.instructions)

    def get(self, task_name: str) -> str:
        """The instruction of one task; an unknown task raises with the closest names."""
        try:
            return self.instructions[task_name]
        except KeyError:
            raise UnknownNameError(
                "task",
                task_name,
                self.instructions,
                hint=f"Instruction set {self.name!r} has no instruction for it (no fallback).",
            ) from None

    def require(self, task_names: Iterable[str]) -> None:
        """Raise one error listing every task of ``task_names`` that has no instruction."""
        missing = sorted({t for t in task_names if t not in self.instructions})
        if missing:
            raise UnknownNamesError(
                "task",
                missing,
                self.instructions,
                what=f"Instruction set {self.name!r} ({self._where()}) has no instruction for",
            )

    def prefix(self, task_name: str, template: str | None = None) -> str:
        """The full prefix of an instructed input of this task (template filled in)."""
        return (self.template if template is None else template).format(
            instruction=self.get(task_name)
        )

    def _where(self) -> str:
        return str(self.path) if self.path else "built in code"


def available_instruction_sets() -> list[str]:
    """Names of the instruction sets in the instructions folder, sorted."""
    folder = instructions_dir()
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.iterdir() if p.suffix in _YAML_SUFFIXES)


def load_instruction_set(name_or_path: str | os.PathLike[str]) -> InstructionSet:
    """Load and validate an instruction set by name (file stem in the folder) or by file path.

    Every problem of the file is collected and raised as one ``ConfigError`` with line
    numbers. Task names are checked against mteb's task registry when mteb is installed (a
    machine without mteb can still load a set; ``validate-instructions`` always checks).
    Loads are cached per file path and modification time.
    """
    path = _resolve_path(name_or_path)
    stat = path.stat()
    return _load_cached(str(path), stat.st_mtime_ns, stat.st_size, _mteb_available())


def _resolve_path(name_or_path: str | os.PathLike[str]) -> Path:
    text = os.fspath(name_or_path)
    looks_like_path = (
        isinstance(name_or_path, os.PathLike)
        or text.endswith(_YAML_SUFFIXES)
        or os.sep in text
        or "/" in text
    )
    if looks_like_path:
        path = Path(text).expanduser()
        if not path.is_file():
            raise ConfigError(f"Instruction file {str(path)!r} does not exist.")
        return path.resolve()
    folder = instructions_dir()
    for suffix in _YAML_SUFFIXES:
        candidate = folder / f"{text}{suffix}"
        if candidate.is_file():
            return candidate.resolve()
    raise UnknownNameError(
        "instruction set",
        text,
        available_instruction_sets(),
        hint=f"Named sets are the YAML files in {folder}; or give a path to a YAML file.",
    )


@functools.lru_cache(maxsize=32)
def _load_cached(path: str, mtime_ns: int, size: int, check_registry: bool) -> InstructionSet:
    del mtime_ns, size  # cache keys only: an edited file is read again
    file = Path(path)
    expected_name = file.stem if file.parent == instructions_dir().resolve() else None
    return parse_instruction_file(file, expected_name=expected_name, check_registry=check_registry)


def parse_instruction_file(
    path: Path, *, expected_name: str | None = None, check_registry: bool = True
) -> InstructionSet:
    """Parse and validate one instruction file (uncached); see ``load_instruction_set``."""
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

    problems: list[tuple[int, str]] = []
    values, value_lines, tasks, task_lines = _check_structure(root, problems)

    name = values.get("name")
    if expected_name is not None and name is not None and name != expected_name:
        message = f"name {name!r} must equal the file stem {expected_name!r} (sets go by file name)"
        problems.append((value_lines["name"], message))
    if check_registry and task_lines:
        known = mteb_task_names()
        for task, line in task_lines.items():
            if task not in known:
                close = did_you_mean(task, known)
                hint = f"; did you mean: {', '.join(repr(c) for c in close)}?" if close else ""
                problems.append((line, f"task {task!r} is not an mteb task{hint}"))

    if problems:
        problems.sort(key=lambda p: p[0])
        listing = "\n".join(f"  {path}:{line}: {msg}" for line, msg in problems)
        raise ConfigError(
            f"Instruction file {str(path)!r} has {len(problems)} problem(s):\n{listing}"
        )
    return InstructionSet(
        name=values["name"],
        version=values["version"],
        source=values["source"],
        template=values["template"],
        instructions=tasks,
        path=path,
    )


def _check_structure(
    root: yaml.Node | None, problems: list[tuple[int, str]]
) -> tuple[dict[str, str], dict[str, int], dict[str, str], dict[str, int]]:
    """Check the node tree, filling ``problems`` with (line, message).

    Returns the valid top-level values, their lines, the valid tasks and the tasks' lines.
    """
    values: dict[str, str] = {}
    value_lines: dict[str, int] = {}
    tasks: dict[str, str] = {}
    task_lines: dict[str, int] = {}
    if not isinstance(root, yaml.MappingNode):
        line = root.start_mark.line + 1 if root is not None else 1
        problems.append((line, f"the file must be a mapping with keys {list(REQUIRED_KEYS)}"))
        return values, value_lines, tasks, task_lines

    seen: dict[str, int] = {}
    for key_node, value_node in root.value:
        line = key_node.start_mark.line + 1
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if not isinstance(key, str):
            problems.append((line, "top-level keys must be plain strings"))
            continue
        if key in seen:
            problems.append((line, f"duplicate key {key!r} (first on line {seen[key]})"))
            continue
        seen[key] = line
        if key not in REQUIRED_KEYS:
            close = did_you_mean(key, REQUIRED_KEYS)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(
                (line, f"unknown key {key!r}{hint} (valid keys: {', '.join(REQUIRED_KEYS)})")
            )
            continue
        if key == "tasks":
            _check_tasks(value_node, problems, tasks, task_lines)
            continue
        value_line = value_node.start_mark.line + 1
        if not _is_str(value_node):
            shown = getattr(value_node, "value", "")
            shown = shown if isinstance(shown, str) else type(value_node).__name__
            problems.append((value_line, f"{key!r} must be a string (quote it), got {shown!r}"))
            continue
        value = value_node.value
        if not value.strip():
            problems.append((value_line, f"{key!r} must not be empty"))
            continue
        if key == "template":
            fields = _format_fields(value)
            if fields is None:
                problems.append((value_line, "template is not a valid format string"))
                continue
            if "instruction" not in fields:
                problems.append((value_line, "template must contain '{instruction}'"))
                continue
            if fields - {"instruction"}:
                other = ", ".join(sorted(fields - {"instruction"}))
                problems.append(
                    (value_line, f"template may only use '{{instruction}}', not {other}")
                )
                continue
        values[key] = value
        value_lines[key] = value_line

    start_line = root.start_mark.line + 1
    for key in REQUIRED_KEYS:
        if key not in seen:
            problems.append((start_line, f"missing required key {key!r}"))
    return values, value_lines, tasks, task_lines


def _check_tasks(
    node: yaml.Node,
    problems: list[tuple[int, str]],
    tasks: dict[str, str],
    task_lines: dict[str, int],
) -> None:
    if not isinstance(node, yaml.MappingNode):
        problems.append(
            (node.start_mark.line + 1, "'tasks' must be a mapping of task name -> instruction")
        )
        return
    if not node.value:
        problems.append((node.start_mark.line + 1, "'tasks' is empty"))
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        if not _is_str(key_node) or not key_node.value.strip():
            problems.append((line, "task names must be non-empty strings"))
            continue
        task = key_node.value
        if task in task_lines:
            problems.append((line, f"duplicate task {task!r} (first on line {task_lines[task]})"))
            continue
        task_lines[task] = line
        if not _is_str(value_node):
            problems.append((line, f"instruction of {task!r} must be a string (quote it)"))
            continue
        instruction = value_node.value
        if not instruction.strip():
            problems.append((line, f"instruction of {task!r} is empty"))
            continue
        if instruction != instruction.strip():
            problems.append((line, f"instruction of {task!r} has leading or trailing whitespace"))
            continue
        tasks[task] = instruction


def _is_str(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _STR_TAG


def _format_fields(template: str) -> set[str] | None:
    try:
        return {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError:
        return None


# --- mteb (lazy: only whether it is installed is checked here) ---


def _mteb_available() -> bool:
    try:
        import mteb  # noqa: F401
    except ImportError:
        return False
    return True


def validate_against_benchmark(
    instruction_set: InstructionSet | str, benchmark_name: str = DEFAULT_BENCHMARK
) -> list[str]:
    """Check that the set covers every task of a benchmark and every subtask of its aggregates.

    Returns the covered task names; raises one error listing every missing task.
    """
    iset = _as_set(instruction_set)
    names = task_names(benchmark_name, expand_aggregates=True)
    iset.require(names)
    return names


def _as_set(instruction_set: InstructionSet | str | os.PathLike[str]) -> InstructionSet:
    if isinstance(instruction_set, InstructionSet):
        return instruction_set
    return load_instruction_set(instruction_set)


def validate_instruction_file(
    name_or_path: str | os.PathLike[str], benchmark: str | None = DEFAULT_BENCHMARK
) -> InstructionSet:
    """Fully validate one instruction file (mteb registry required), optionally its coverage.

    The ``validate-instructions`` command: checks a YAML file without running a model.
    """
    path = _resolve_path(name_or_path)
    if not _mteb_available():
        raise ConfigError("Validating instruction files needs mteb (pip install mteb).")
    expected = path.stem if path.parent == instructions_dir().resolve() else None
    iset = parse_instruction_file(path, expected_name=expected, check_registry=True)
    if benchmark:
        validate_against_benchmark(iset, benchmark)
    return iset


__all__ = [
    "DEFAULT_INSTRUCTIONS_DIR",
    "INSTRUCTIONS_DIR",
    "InstructionSet",
    "available_instruction_sets",
    "instructions_dir",
    "load_instruction_set",
    "parse_instruction_file",
    "validate_against_benchmark",
    "validate_instruction_file",
]
