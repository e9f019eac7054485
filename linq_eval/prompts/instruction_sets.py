"""Per-task instruction sets: YAML files in ``task_instructions/``, keyed by exact mteb task names.

An instruction set maps each task to one instruction sentence; its ``template`` turns that
sentence into the prefix an instructed input receives. Which inputs are instructed is the
policy's business (``linq_eval.model.policies``), not the set's. A task without an instruction is an
error, never a silent generic fallback.

    from linq_eval.prompts.instruction_sets import load_instruction_set, task_prompts
    e5 = load_instruction_set("e5")
    e5.prefix("SciFact")            # 'Instruct: Given a scientific claim, ...\\nQuery: '
    task_prompts(["SciFact", "STS12"], "e5", e5)

mteb is imported lazily inside the functions that need it: importing this module must work on a
machine without mteb.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from linq_eval import paths
from linq_eval.errors import ConfigError, UnknownNameError, did_you_mean
from linq_eval.model.policies import Policy, get_policy
from linq_eval.prompts.instruction_file import read_instruction_file

if TYPE_CHECKING:
    from mteb.abstasks.abstask import AbsTask

DEFAULT_INSTRUCTIONS_DIR = paths.instructions_root()
"""The repository's ``task_instructions/`` folder."""
INSTRUCTIONS_DIR_ENV = "LINQ_EVAL_INSTRUCTIONS_DIR"
"""Environment variable that points the registry at another folder."""
INSTRUCTIONS_DIR = Path(os.environ.get(INSTRUCTIONS_DIR_ENV) or DEFAULT_INSTRUCTIONS_DIR)
"""Where named instruction sets live (as of import; ``instructions_dir()`` rereads the env)."""

DEFAULT_BENCHMARK = "MTEB(eng, v1)"

_YAML_SUFFIXES = (".yaml", ".yml")


def instructions_dir() -> Path:
    """The folder of named instruction sets: ``$LINQ_EVAL_INSTRUCTIONS_DIR`` or the repo's."""
    return Path(os.environ.get(INSTRUCTIONS_DIR_ENV) or DEFAULT_INSTRUCTIONS_DIR)


class UnknownNamesError(UnknownNameError):
    """Several unknown names at once, each listed with its closest valid names."""

    def __init__(self, kind: str, names: Sequence[str], choices: Iterable[str], what: str) -> None:
        choices = sorted(set(choices))
        super().__init__(kind, names[0], choices)
        self.names = list(names)
        self.suggestions_by_name = {n: did_you_mean(n, choices) for n in names}
        parts = []
        for n in names:
            close = self.suggestions_by_name[n]
            hint = f" (did you mean: {', '.join(repr(c) for c in close)}?)" if close else ""
            parts.append(f"{n!r}{hint}")
        self.args = (f"{what} {len(names)} {kind}(s): {'; '.join(parts)}.",)


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
        return hash((self.name, self.version, self.template, self.prompt_hash()))

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
            error = UnknownNamesError(
                "task",
                missing,
                self.instructions,
                what=f"Instruction set {self.name!r} ({self._where()}) has no instruction for",
            )
            error.args = (f"{error.args[0]} {SUPPLY_HINT}",)
            raise error

    def prefix(self, task_name: str, template: str | None = None) -> str:
        """The full prefix of an instructed input of this task (template filled in)."""
        return (self.template if template is None else template).format(
            instruction=self.get(task_name)
        )

    def prompt_hash(
        self, task_names: Iterable[str] | None = None, *, template: str | None = None
    ) -> str:
        """16 hex digits of sha256 over the template and the (task, instruction) pairs used.

        ``task_names``: only these tasks (all must have an instruction); default: every task.
        ``template``: the template actually used, when a profile overrides the set's.
        Depends only on the strings, not on the policy, the set's name or its version: two runs
        with equal hashes gave every task the same instruction.
        """
        if task_names is None:
            pairs = dict(self.instructions)
        else:
            names = list(task_names)
            self.require(names)
            pairs = {t: self.instructions[t] for t in names}
        return prompt_hash(pairs, self.template if template is None else template)

    def _where(self) -> str:
        return str(self.path) if self.path else "built in code"


SUPPLY_HINT = (
    "To run them, give an instruction set that covers them: copy task_instructions/e5.yaml "
    '(keys name, version, source, template, and tasks: one `TaskName: "instruction"` line '
    "per task; the format is in task_instructions/README.md), add the tasks listed, check it "
    "with `linq-eval validate-instructions PATH --benchmark NAME` and pass it with "
    "`--instructions PATH`."
)
"""How to supply instructions for tasks a set lacks (appended to the missing-task error)."""


def prompt_hash(instructions: Mapping[str, str], template: str) -> str:
    """16 hex digits of sha256 over a canonical JSON of ``template`` and ``instructions``."""
    canonical = json.dumps(
        {"instructions": dict(sorted(instructions.items())), "template": template},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


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
    registry = (_mteb_task_names(), _mteb_parent_of) if check_registry else None
    parsed = read_instruction_file(path, expected_name=expected_name, registry=registry)
    return InstructionSet(**parsed, path=path)


# --- mteb look-ups (lazy: mteb is imported only here) ---


def _mteb_available() -> bool:
    try:
        import mteb  # noqa: F401
    except ImportError:
        return False
    return True


@functools.lru_cache(maxsize=1)
def _mteb_task_names() -> frozenset[str]:
    """Every task name in mteb's registry (superseded, private and beta tasks included)."""
    import mteb

    with _quiet_mteb():
        tasks = mteb.get_tasks(
            exclude_superseded=False,
            exclude_aggregate=False,
            exclude_private=False,
            exclude_beta=False,
        )
    return frozenset(t.metadata.name for t in tasks)


def _mteb_parent_of(task: str, parent: str) -> bool:
    """Whether mteb records ``task`` as adapted from ``parent`` (or ``parent`` superseded by
    it); False when either name is not an mteb task."""
    known = _mteb_task_names()
    if task not in known or parent not in known:
        return False
    adapted = _mteb_task(task).metadata.adapted_from or []
    return parent in adapted or _mteb_task(parent).metadata.superseded_by == task


def _mteb_task(name: str) -> AbsTask:
    """One mteb task object; an unknown name raises ``UnknownNameError`` with suggestions."""
    import mteb

    if name not in _mteb_task_names():
        raise UnknownNameError("task", name, _mteb_task_names())
    with _quiet_mteb():
        return mteb.get_task(name)


@contextlib.contextmanager
def _quiet_mteb() -> Iterator[None]:
    """Silence mteb's warnings about beta or superseded tasks while reading its registry."""
    logger = logging.getLogger("mteb")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def resolve_benchmark_tasks(
    benchmark: str | None = None,
    tasks: Sequence[str] | None = None,
    *,
    expand_aggregates: bool = False,
) -> list[str]:
    """Task names of a benchmark (default ``MTEB(eng, v1)``) or of an explicit task list.

    Giving both is an error. Unknown names raise ``UnknownNameError`` with suggestions.
    ``expand_aggregates`` adds the subtasks of aggregate tasks (CQADupstackRetrieval) after
    each aggregate.
    """
    import mteb

    if benchmark and tasks:
        raise ConfigError("Give either a benchmark or a list of tasks, not both.")
    if tasks:
        names = list(dict.fromkeys(tasks))
        unknown = [t for t in names if t not in _mteb_task_names()]
        if len(unknown) == 1:
            raise UnknownNameError("task", unknown[0], _mteb_task_names())
        if unknown:
            raise UnknownNamesError("task", unknown, _mteb_task_names(), what="Unknown")
        task_objects = [_mteb_task(t) for t in names]
    else:
        benchmark = benchmark or DEFAULT_BENCHMARK
        try:
            bench = mteb.get_benchmark(benchmark)
        except KeyError:
            raise UnknownNameError(
                "benchmark", benchmark, [b.name for b in mteb.get_benchmarks()]
            ) from None
        task_objects = list(bench.tasks)
    result: list[str] = []
    for task in task_objects:
        result.append(task.metadata.name)
        if expand_aggregates and task.is_aggregate:
            result.extend(sub.metadata.name for sub in task.metadata.tasks)
    return list(dict.fromkeys(result))


def validate_against_benchmark(
    instruction_set: InstructionSet | str, benchmark_name: str = DEFAULT_BENCHMARK
) -> list[str]:
    """Check that the set covers every task of a benchmark and every subtask of its aggregates.

    Returns the covered task names; raises one error listing every missing task.
    """
    iset = _as_set(instruction_set)
    names = resolve_benchmark_tasks(benchmark_name, expand_aggregates=True)
    iset.require(names)
    return names


def task_prompts(
    task_names: Iterable[str],
    policy: str | Policy,
    instruction_set: InstructionSet | str,
    template: str | None = None,
) -> dict[str, dict[str, str]]:
    """The exact prefix that each task's queries and documents receive under a policy.

    Returns ``{task: {"query": prefix, "document": prefix}}`` with ``""`` where the policy
    applies no instruction. ``query`` is the queries (retrieval, reranking), the first input
    (STS, pair classification) or every input (classification, clustering, summarization);
    ``document`` is the corpus, the reranking candidates or the second input. The policy is
    asked with the prompt type mteb passes for that input (``input_prompt_types``): mteb v2
    encodes non-retrieval inputs with prompt type None, so STS second sentences are instructed
    under every instructing policy. Every task needs an instruction unless the policy never
    instructs.
    """
    pol = get_policy(policy)
    iset = _as_set(instruction_set)
    names = list(dict.fromkeys(task_names))
    if pol.instruct:
        iset.require(names)
    tmpl = template if template is not None else iset.template
    if pol.instruct and "{instruction}" not in tmpl:
        raise ConfigError(f"Template {tmpl!r} must contain '{{instruction}}'.")
    prompts: dict[str, dict[str, str]] = {}
    for name, (task_type, query_type, document_type) in _task_encodings(names).items():
        prompts[name] = {
            side: iset.prefix(name, tmpl) if pol.applies(task_type, prompt_type) else ""
            for side, prompt_type in (("query", query_type), ("document", document_type))
        }
    return prompts


def task_types(task_names: Iterable[str]) -> dict[str, str]:
    """mteb's task type (``Retrieval``, ``STS`` ...) of each task."""
    return {name: enc[0] for name, enc in _task_encodings(task_names).items()}


def input_prompt_types(task_names: Iterable[str]) -> dict[str, dict[str, str | None]]:
    """The prompt type mteb passes to ``encode`` for each task's query and document side.

    ``"query"``/``"document"`` for retrieval-based tasks (Retrieval and, in mteb v2, Reranking);
    the task's ``input1_prompt_type``/``input2_prompt_type`` for STS and pair classification
    (None for all MTEB(eng, v1) tasks); None for every other task type.
    """
    return {
        name: {"query": enc[1], "document": enc[2]}
        for name, enc in _task_encodings(task_names).items()
    }


def _task_encodings(task_names: Iterable[str]) -> dict[str, tuple[str, str | None, str | None]]:
    """Task name -> (task type, prompt type of the query side, of the document side)."""
    return {name: _encoding_of(_mteb_task(name)) for name in dict.fromkeys(task_names)}


def _encoding_of(task: AbsTask) -> tuple[str, str | None, str | None]:
    from mteb.abstasks.retrieval import AbsTaskRetrieval

    task_type = task.metadata.type
    if task.is_aggregate:  # CQADupstackRetrieval: its subtasks are what gets encoded
        subtasks = task.metadata.tasks
        _, query_type, document_type = _encoding_of(subtasks[0])
        return task_type, query_type, document_type
    if isinstance(task, AbsTaskRetrieval):
        return task_type, "query", "document"

    def value(prompt_type: Any) -> str | None:
        return None if prompt_type is None else str(getattr(prompt_type, "value", prompt_type))

    return (
        task_type,
        value(getattr(task, "input1_prompt_type", None)),
        value(getattr(task, "input2_prompt_type", None)),
    )


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
    "DEFAULT_BENCHMARK",
    "DEFAULT_INSTRUCTIONS_DIR",
    "INSTRUCTIONS_DIR",
    "InstructionSet",
    "UnknownNamesError",
    "available_instruction_sets",
    "input_prompt_types",
    "instructions_dir",
    "load_instruction_set",
    "parse_instruction_file",
    "prompt_hash",
    "resolve_benchmark_tasks",
    "task_prompts",
    "task_types",
    "validate_against_benchmark",
    "validate_instruction_file",
]
