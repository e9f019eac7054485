"""Per-task instruction sets: YAML files in ``task_instructions/``, keyed by exact mteb task names.

An instruction set maps each task to one instruction sentence; its ``template`` turns that
sentence into the prefix an instructed input receives. Which inputs are instructed is the
policy's business (``linq_eval.prompts.policies``), not the set's. A task the set has no entry
for takes the instruction of the nearest task it derives from that the set has (mteb's
``adapted_from``, or a task it supersedes: NanoSciFactRetrieval takes SciFact's), and says so
(``source_of``); a task with neither is an error, never a silent generic fallback.

    from linq_eval.prompts.instruction_sets import load_instruction_set
    e5 = load_instruction_set("e5")
    e5.prefix("SciFact")            # 'Instruct: Given a scientific claim, ...\\nQuery: '

The prefixes each task's inputs receive under a policy, and their hash, come from
``linq_eval.prompts.builder``; task selection from ``linq_eval.benchmarks``.

Task names are checked against mteb's registry as data (``linq_eval.registry``); importing this
module must work on a machine without mteb.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from linq_eval import paths
from linq_eval.benchmarks import DEFAULT_BENCHMARK, task_names
from linq_eval.errors import ConfigError, UnknownNameError, UnknownNamesError, did_you_mean
from linq_eval.prompts.instruction_file import read_instruction_file
from linq_eval.provenance import mteb_version
from linq_eval.registry import registry

DEFAULT_INSTRUCTIONS_DIR = paths.instructions_root()
"""The repository's ``task_instructions/`` folder."""

_YAML_SUFFIXES = (".yaml", ".yml")


def _instructions_dir() -> Path:
    """The folder of named instruction sets (``linq_eval.paths.instruction_sets_dir``)."""
    return paths.instruction_sets_dir()


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
    origins: Mapping[str, Mapping[str, str]] = field(default_factory=dict, repr=False)
    """Task -> where its instruction comes from (``parent`` or ``borrowed_from``, ``reason``),
    for the entries that say so (read-only)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "instructions", MappingProxyType(dict(self.instructions)))
        frozen = {t: MappingProxyType(dict(o)) for t, o in self.origins.items()}
        object.__setattr__(self, "origins", MappingProxyType(frozen))

    def __hash__(self) -> int:
        pairs = tuple(sorted(self.instructions.items()))
        return hash((self.name, self.version, self.template, pairs))

    @property
    def task_names(self) -> list[str]:
        """The tasks this set has an instruction for, sorted."""
        return sorted(self.instructions)

    def source_of(self, task_name: str) -> str | None:
        """The task whose instruction ``task_name`` receives: itself when the set has an
        entry for it, else the nearest task it derives from that has one (mteb's registry:
        ``adapted_from``, or a task it supersedes); None when neither."""
        if task_name in self.instructions:
            return task_name
        if mteb_version() is None:  # no registry to ask (the GPU benchmark machine)
            return None
        lineage = registry().lineage(task_name) if task_name in registry().tasks else []
        return next((t for t in lineage if t in self.instructions), None)

    def get(self, task_name: str) -> str:
        """The instruction of one task (its own, or inherited: ``source_of``); a task with
        neither raises with the closest names."""
        source = self.source_of(task_name)
        if source is None:
            raise UnknownNameError(
                "task",
                task_name,
                self.instructions,
                hint=f"Instruction set {self.name!r} has no instruction for it (no fallback).",
                suggest=_suggest,
            )
        return self.instructions[source]

    def require(self, task_names: Iterable[str]) -> None:
        """Raise one error listing every task of ``task_names`` that has no instruction of its
        own or of a task it derives from."""
        missing = sorted({t for t in task_names if self.source_of(t) is None})
        if missing:
            error = UnknownNamesError(
                "task",
                missing,
                self.instructions,
                what=f"Instruction set {self.name!r} ({self.path or 'built in code'}) has no "
                "instruction for",
                suggest=_suggest,
            )
            error.args = (f"{error.args[0]} {_SUPPLY_HINT}",)
            raise error

    def prefix(self, task_name: str, template: str | None = None) -> str:
        """The full prefix of an instructed input of this task (template filled in)."""
        return (self.template if template is None else template).format(
            instruction=self.get(task_name)
        )


def _suggest(name: str, choices: Sequence[str]) -> list[str]:
    """Tasks a set has that an uninstructed one is closest to: those it derives from, then
    the names spelled alike."""
    if mteb_version() is None:
        return did_you_mean(name, choices)
    return registry().suggest(name, choices)


_SUPPLY_HINT = (
    "To run them, give an instruction set that covers them: copy task_instructions/e5.yaml "
    '(keys name, version, source, template, and tasks: one `TaskName: "instruction"` line '
    "per task; the format is in task_instructions/README.md), add the tasks listed, check it "
    "with `linq-eval validate-instructions PATH --benchmark NAME` and pass it with "
    "`--instructions PATH`."
)
"""How to supply instructions for tasks a set lacks (appended to the missing-task error)."""


def available_instruction_sets() -> list[str]:
    """Names of the instruction sets in the instructions folder, sorted."""
    folder = _instructions_dir()
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
    return _load_cached(str(path), stat.st_mtime_ns, stat.st_size, mteb_version() is not None)


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
    folder = _instructions_dir()
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
    expected_name = file.stem if file.parent == _instructions_dir().resolve() else None
    return parse_instruction_file(file, expected_name=expected_name, check_registry=check_registry)


def parse_instruction_file(
    path: Path, *, expected_name: str | None = None, check_registry: bool = True
) -> InstructionSet:
    """Parse and validate one instruction file (uncached); see ``load_instruction_set``."""
    known = (frozenset(registry().tasks), _mteb_parent_of) if check_registry else None
    parsed = read_instruction_file(path, expected_name=expected_name, registry=known)
    return InstructionSet(**parsed, path=path)


# --- mteb's registry (as data: mteb is not imported) ---


def _mteb_parent_of(task: str, parent: str) -> bool:
    """Whether mteb records ``task`` as adapted from ``parent`` (or ``parent`` superseded by
    it); False when either name is not an mteb task."""
    tasks = registry().tasks
    if task not in tasks or parent not in tasks:
        return False
    return parent in tasks[task].adapted_from or tasks[parent].superseded_by == task


def validate_against_benchmark(
    instruction_set: InstructionSet | str, benchmark_name: str = DEFAULT_BENCHMARK
) -> list[str]:
    """Check that the set covers every task of a benchmark and every subtask of its aggregates.

    Returns the covered task names; raises one error listing every missing task.
    """
    iset = as_instruction_set(instruction_set)
    names = task_names(benchmark_name, expand_aggregates=True)
    iset.require(names)
    return names


def as_instruction_set(
    instruction_set: InstructionSet | str | os.PathLike[str] | None,
) -> InstructionSet | None:
    """An instruction set given as itself, a name or a path (None stays None)."""
    if instruction_set is None or isinstance(instruction_set, InstructionSet):
        return instruction_set
    return load_instruction_set(instruction_set)


def validate_instruction_file(
    name_or_path: str | os.PathLike[str], benchmark: str | None = DEFAULT_BENCHMARK
) -> InstructionSet:
    """Fully validate one instruction file (mteb registry required), optionally its coverage.

    The ``validate-instructions`` command: checks a YAML file without running a model.
    """
    path = _resolve_path(name_or_path)
    if mteb_version() is None:
        raise ConfigError("Validating instruction files needs mteb (pip install mteb).")
    expected = path.stem if path.parent == _instructions_dir().resolve() else None
    iset = parse_instruction_file(path, expected_name=expected, check_registry=True)
    if benchmark:
        validate_against_benchmark(iset, benchmark)
    return iset


__all__ = [
    "DEFAULT_INSTRUCTIONS_DIR",
    "InstructionSet",
    "as_instruction_set",
    "available_instruction_sets",
    "load_instruction_set",
    "parse_instruction_file",
    "validate_against_benchmark",
    "validate_instruction_file",
]
