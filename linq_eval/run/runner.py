"""The suite runner: every task of a benchmark through mteb, resumable, cached, sharded.

``run_suite(RunConfig(...))`` is the library call behind ``linq-eval run``:

    from linq_eval.run.runner import RunConfig, run_suite
    summary = run_suite(RunConfig(model="all-minilm-l6-v2", tasks=("SciFact",),
                                  data_dir=Path("../shared/data"), output=Path("runs/minilm")))

What it writes, under ``output``:

- ``results/<org__model>/<revision>/<Task>.json``: mteb's own result files and layout (through
  ``mteb.evaluate`` and a ``ResultCache`` rooted at ``output``), so mteb can read them; every
  file is written atomically;
- ``linq_eval_run.json`` beside them: the run record (settings, prompt hash, versions, device,
  and per task its wall time, tokens/s, texts and dataset revision), merged across resumed runs
  and shards, and checked: a run whose score-changing settings differ from the record's is an
  error unless ``allow_settings_change``;
- ``embeddings/``: the embedding cache (``linq_eval.run.cache``), unless ``cache_dir``
  puts it elsewhere or ``use_cache`` is off;
- ``.linq_eval/locks/``: one lock per task being evaluated, so two runs cannot write the same
  task of the same folder at once (shards of one run, which hold different tasks, can).

Order of work: options are checked, tasks selected and the instruction set checked against
them before any model is loaded; then finished tasks are skipped, the others are evaluated one
by one, each followed by a one-line summary and an update of the run record.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import platform
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mteb

from linq_eval.run import distributed
from linq_eval.atomic import (
    FileLock,
    LockHeldError,
    atomic_path,
    atomic_write_json,
    disk_full_error,
    fsync_file,
    remove_stale_temporaries,
    scratch_prefix,
)
from linq_eval.errors import ConfigError, LinqEvalError, UnknownNameError
from linq_eval.model.check_record import check_outcome
from linq_eval.run.plan import (
    DEFAULT_TOKENS_PER_S,
    Plan,
    PlanRow,
    Shard,
    assign_shards,
    estimate_task,
    expanded_names,
    select_tasks,
    shared_corpus_of,
)
from linq_eval.results.reading import RUN_RECORD

if TYPE_CHECKING:
    from mteb.abstasks.abstask import AbsTask
    from mteb.models.model_meta import ModelMeta

    from linq_eval.model.encoder import DecoderEncoder
    from linq_eval.model.profiles import Profile

logger = logging.getLogger(__name__)

SCRATCH = ".linq_eval/scratch"
"""Where mteb writes result files before they are renamed into place (under OUTPUT)."""

SCORE_SETTINGS = (
    "model",
    "revision",
    "model_source",
    "dtype",
    "max_length",
    "pooling",
    "policy",
    "template",
    "instructions",
    "instructions_version",
    "eos",
    "bos",
    "special_tokens",
    "embedding_precision",
)
"""Settings that change scores: a folder's tasks must all have been made with the same ones."""

VERSION_PACKAGES = (
    "linq-eval",
    "mteb",
    "torch",
    "transformers",
    "tokenizers",
    "datasets",
    "numpy",
    "scikit-learn",
    "sentence-transformers",
    "flash-attn",
)
"""Packages whose versions the run record keeps."""

ENCODE_KWARGS = {"batch_size": 512}
"""What mteb passes to encode (only the size of its data loader's batches: the encoder forms its
own batches by tokens). Constant, because mteb records it in run_settings.jsonl."""


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class RunConfig:
    """One ``linq-eval run``: which model, which tasks, which settings, where to write."""

    model: str = "linq-embed-mistral"
    """Profile name, hub id (org/name) or local model directory."""
    revision: str | None = None
    """Hub revision of the model (None: the profile's pinned revision)."""
    benchmark: str | None = None
    """mteb benchmark whose tasks to run (None with no ``tasks``: MTEB(eng, v1))."""
    tasks: tuple[str, ...] = ()
    """Exact mteb task names to run instead of a benchmark."""
    task_types: tuple[str, ...] = ()
    """Keep only the benchmark's tasks of these types (Retrieval, STS ...)."""
    max_length: int | None = None
    """Tokens per input, special tokens included (None: the profile's)."""
    dtype: str | None = None
    """auto, bfloat16, float16 or float32 (None: the profile's)."""
    policy: str | None = None
    """Instruction policy: e5, mteb or none (None: the profile's)."""
    instructions: str | None = None
    """Instruction set name or YAML path (None: the profile's)."""
    output: Path = Path("results")
    """Output folder: mteb's results/ tree, the run record, the embedding cache."""
    data_dir: Path | None = None
    """Folder of local task data (linq_eval.run.local_data); tasks without a folder use the hub."""
    cache_dir: Path | None = None
    """Embedding cache folder (None: ``<output>/embeddings``)."""
    use_cache: bool = True
    """Keep embeddings on disk (False: nothing cached; a killed task restarts from zero)."""
    chunk_texts: int = 2048
    """Texts per persisted chunk: a kill loses at most one chunk per process."""
    shard: Shard | None = None
    """Run only this share of the tasks (balanced by estimated tokens)."""
    device: str | None = None
    """cpu, cuda or cuda:N (None: CUDA when available); under torchrun each rank's own GPU."""
    token_budget: int | None = None
    """Padded tokens per batch (None: the encoder's default for the device)."""
    dry_run: bool = False
    """Only show the plan: tasks, sizes, what is done, estimated GPU-hours."""
    tokens_per_s: float = DEFAULT_TOKENS_PER_S
    """Throughput assumed by the plan's time estimate."""
    random_init: str | None = None
    """Use a randomly initialised Mistral of this size (tiny, mistral-7b): tests, speed."""
    allow_settings_change: bool = False
    """Let this run add results to a folder whose record has other score-changing settings."""
    progress: bool = True
    """Show progress bars."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "output", Path(self.output))
        for name in ("data_dir", "cache_dir"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value))
        object.__setattr__(self, "tasks", tuple(self.tasks))
        object.__setattr__(self, "task_types", tuple(self.task_types))

    def check(self) -> None:
        """Raise one ConfigError listing every unusable or conflicting option."""
        from linq_eval.model.encoder import _DTYPE_ALIASES, _DTYPES, MIN_MAX_LENGTH
        from linq_eval.model.random_models import CONFIGS

        problems: list[str] = []
        if self.benchmark and self.tasks:
            problems.append("--benchmark and --tasks both given: choose one")
        if self.tasks and self.task_types:
            problems.append(
                "--task-types selects among a benchmark's tasks; with --tasks list the tasks"
            )
        if self.max_length is not None and self.max_length < MIN_MAX_LENGTH:
            problems.append(f"--max-length {self.max_length} is below {MIN_MAX_LENGTH}")
        if self.dtype is not None:
            name = _DTYPE_ALIASES.get(self.dtype, self.dtype)
            if name != "auto" and name not in _DTYPES:
                problems.append(f"--dtype {self.dtype!r}: valid are auto, {', '.join(_DTYPES)}")
        if self.chunk_texts < 1:
            problems.append(f"--chunk-texts {self.chunk_texts}: must be at least 1")
        if (
            self.token_budget is not None
            and self.max_length is not None
            and self.token_budget < self.max_length
        ):
            problems.append(
                f"--token-budget {self.token_budget} is below --max-length {self.max_length}: "
                "the longest input would not fit in a batch"
            )
        if self.tokens_per_s <= 0:
            problems.append("--tokens-per-s must be positive")
        if self.random_init is not None:
            if self.random_init not in CONFIGS:
                problems.append(
                    f"--random-init {self.random_init!r}: valid sizes are {', '.join(CONFIGS)}"
                )
            if self.model != RunConfig.model:
                problems.append("--random-init replaces the model: do not give --model with it")
            if self.revision is not None:
                problems.append("--random-init has no revision: do not give --revision with it")
        if self.output.exists() and not self.output.is_dir():
            problems.append(f"--output {self.output} exists and is not a folder")
        if self.data_dir is not None and not self.data_dir.is_dir():
            problems.append(f"--data-dir {self.data_dir} is not a folder")
        if not self.use_cache and self.cache_dir is not None:
            problems.append("--cache-dir given together with --no-cache")
        if problems:
            raise ConfigError("Conflicting or invalid options:\n  " + "\n  ".join(problems))

    @property
    def embedding_cache_dir(self) -> Path | None:
        if not self.use_cache:
            return None
        return self.cache_dir if self.cache_dir is not None else self.output / "embeddings"


# --------------------------------------------------------------------------- model identity


def resolve_profile(config: RunConfig) -> Profile:
    """The profile the run will use, with the config's overrides (no weights are read)."""
    from linq_eval.model.policies import get_policy
    from linq_eval.model.profiles import get_profile, profile_for_model

    if config.random_init:
        from linq_eval.model.random_models import CONFIGS

        if config.random_init not in CONFIGS:
            raise UnknownNameError("model size", config.random_init, CONFIGS)
        profile = get_profile("linq-embed-mistral").with_overrides(
            name=f"random-{config.random_init}",
            model=f"linq-eval/random-mistral-{config.random_init}",
            mteb_name=None,
            revision="seed-0",
        )
    else:
        profile = profile_for_model(config.model)
    overrides = {
        "max_length": config.max_length,
        "policy": config.policy,
        "instructions": config.instructions,
        "dtype": config.dtype,
    }
    if config.revision and not config.random_init:
        overrides["revision"] = config.revision
    profile = profile.with_overrides(**{k: v for k, v in overrides.items() if v is not None})
    get_policy(profile.policy)
    if config.token_budget is not None and config.token_budget < profile.max_length:
        raise ConfigError(
            f"--token-budget {config.token_budget} is below max_length {profile.max_length}: "
            "the longest input would not fit in a batch"
        )
    return profile


def model_meta_for(profile: Profile) -> ModelMeta:
    """mteb's ModelMeta the results will be filed under (name and revision)."""
    from linq_eval.model.encoder import build_model_meta

    return build_model_meta(profile)


def check_instructions(profile: Profile, task_names: Sequence[str]) -> Any | None:
    """The instruction set, after checking that it covers every task (error listing all)."""
    from linq_eval.prompts.instruction_sets import load_instruction_set
    from linq_eval.model.policies import get_policy

    if not get_policy(profile.policy).instruct:
        return None
    if not profile.instructions:
        raise ConfigError(
            f"Policy {profile.policy!r} instructs inputs but no instruction set is given "
            "(--instructions)"
        )
    iset = load_instruction_set(profile.instructions)
    iset.require(task_names)
    return iset


def profile_prompts(profile: Profile, task_names: Sequence[str]) -> dict[str, dict[str, str]]:
    """The prefixes each task's sides receive under this profile (for estimates)."""
    from linq_eval.prompts.instruction_sets import task_prompts
    from linq_eval.model.policies import get_policy

    policy = get_policy(profile.policy)
    if not policy.instruct or not profile.instructions:
        return {n: {"query": "", "document": ""} for n in task_names}
    return task_prompts(task_names, policy, profile.instructions, template=profile.template)


# --------------------------------------------------------------------------- result files


class AtomicResultCache(mteb.ResultCache):
    """mteb's ``ResultCache`` with crash-safe writes, for ``mteb.evaluate``.

    mteb writes task files with a plain ``open("w")``: a kill during a write leaves a truncated
    JSON that the next run cannot read. Here mteb writes into a private scratch folder and each
    file is then fsynced and renamed into place. ``run_settings.jsonl`` is merged under the
    folder's record lock (shards share it) and kept sorted, so a folder filled by shards is
    byte-identical to one filled by a single run. ``writable=False`` (ranks other than 0)
    only reads.
    """

    def __init__(
        self, cache_path: str | Path, *, writable: bool = True, lock: FileLock | None = None
    ) -> None:
        super().__init__(cache_path=cache_path)
        self.writable = writable
        self.lock = lock

    def save_to_cache(
        self,
        task_result: Any,
        model_name: Any,
        model_revision: str | None = None,
        *,
        encode_kwargs: Any = None,
    ) -> None:
        if not self.writable:
            return
        target = self.get_task_result_path(
            model_name=model_name, model_revision=model_revision, task_name=task_result.task_name
        ).parent
        try:
            self._save(task_result, model_name, model_revision, target, encode_kwargs)
        except OSError as exc:  # mteb's own writes into the scratch folder
            full = disk_full_error(exc, target / f"{task_result.task_name}.json")
            if full is not None:
                raise full from exc
            raise

    def _save(
        self, task_result: Any, model_name: Any, model_revision: str | None, target: Path,
        encode_kwargs: Any,
    ) -> None:  # fmt: skip
        scratch_root = self.cache_path / SCRATCH
        scratch_root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=scratch_root, prefix=scratch_prefix()) as tmp:
            scratch = mteb.ResultCache(cache_path=tmp)
            scratch.save_to_cache(
                task_result, model_name, model_revision, encode_kwargs=encode_kwargs
            )
            written = scratch.get_task_result_path(
                model_name=model_name,
                model_revision=model_revision,
                task_name=task_result.task_name,
            ).parent
            target.mkdir(parents=True, exist_ok=True)
            with self.lock if self.lock is not None else contextlib.nullcontext():
                for path in sorted(written.iterdir()):
                    if path.name == "run_settings.jsonl":
                        _merge_run_settings(target / path.name, path)
                        continue
                    if path.name == "model_meta.json":
                        _canonical_model_meta(path)
                    fsync_file(path)
                    with atomic_path(target / path.name) as dest:
                        path.replace(dest)


def _canonical_model_meta(path: Path) -> None:
    """Sort model_meta.json's ``training_datasets``: mteb dumps it from a set, in an order that
    changes from process to process (string hashing), and identical runs must give identical
    files."""
    meta = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(meta.get("training_datasets"), list):
        meta["training_datasets"] = sorted(meta["training_datasets"], key=str)
        path.write_text(json.dumps(meta, default=str, indent=4), encoding="utf-8")


def _merge_run_settings(target: Path, new: Path) -> None:
    """Merge mteb's run_settings.jsonl entries into ``target``, sorted, atomically."""
    from mteb.results.task_result import _read_run_settings_from_file, _write_and_merge_keyed_json

    entries = _read_run_settings_from_file(new)
    with atomic_path(target) as tmp:
        if target.exists():
            tmp.write_bytes(target.read_bytes())
        _write_and_merge_keyed_json(tmp, entries)
        lines = sorted(line for line in tmp.read_text(encoding="utf-8").splitlines() if line)
        tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def task_done(folder: Path, task: AbsTask, *, move_unreadable: bool = False) -> bool:
    """Whether ``folder`` holds complete results for the task (every split and subset).

    An unreadable file (e.g. truncated by a tool without atomic writes) means not done; with
    ``move_unreadable`` it is moved aside as ``<Task>.json.unreadable`` so mteb reruns the task.
    """
    from mteb import TaskResult

    path = folder / f"{task.metadata.name}.json"
    if not path.is_file():
        return False
    try:
        result = TaskResult.from_disk(path)
    except Exception as exc:  # noqa: BLE001 - any parse failure means: run it again
        if move_unreadable:
            logger.warning("Result file %s is unreadable (%s): moved aside, rerunning", path, exc)
            path.replace(path.with_name(path.name + ".unreadable"))
        return False
    return not result.get_missing_evaluations(task)


def read_score(folder: Path, task: AbsTask) -> float | None:
    """The task's main score (mteb's 0..1 scale, mean over its splits) from its result file."""
    from mteb import TaskResult

    try:
        return float(TaskResult.from_disk(folder / f"{task.metadata.name}.json").get_score())
    except Exception:  # noqa: BLE001
        return None


# --------------------------------------------------------------------------- run record


def read_run_record(folder: Path) -> dict[str, Any] | None:
    """The folder's run record, None if it has none."""
    path = folder / RUN_RECORD
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc}); move it aside to continue") from None
    if not isinstance(record, dict) or not isinstance(record.get("settings", {}), dict):
        raise ConfigError(f"{path}: not a linq-eval run record")
    return record


def settings_differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Score-changing settings whose values differ, as ``key: recorded -> current``."""
    return [
        f"{key}: {recorded.get(key)!r} (recorded) vs {current.get(key)!r} (this run)"
        for key in SCORE_SETTINGS
        if key in recorded and recorded.get(key) != current.get(key)
    ]


def check_settings(folder: Path, settings: dict[str, Any], allow: bool) -> None:
    """Raise when the folder's record was made with other score-changing settings."""
    record = read_run_record(folder)
    if record is None:
        return
    diffs = settings_differences(record.get("settings", {}), settings)
    if diffs and not allow:
        raise ConfigError(
            f"{folder} already holds results made with other settings:\n  "
            + "\n  ".join(diffs)
            + "\nUse another --output, or --allow-settings-change to mix them on purpose."
        )
    if diffs:
        logger.warning("Settings differ from the record in %s: %s", folder, "; ".join(diffs))


def package_versions() -> dict[str, str | None]:
    """Versions of the packages that matter for scores, and Python's."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSION_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def describe_device(encoder: DecoderEncoder, world_size: int) -> str:
    """``cuda:0 (NVIDIA H100 80GB HBM3) x 8 processes`` / ``cpu (2 threads)``."""
    import torch

    dev = encoder.device
    if dev.type == "cuda":
        text = f"{dev} ({torch.cuda.get_device_name(dev)})"
    else:
        text = f"{dev} ({torch.get_num_threads()} threads)"
    if world_size > 1:
        text += f" x {world_size} processes"
    return text


def update_run_record(
    folder: Path,
    lock: FileLock,
    settings: dict[str, Any],
    *,
    allow_settings_change: bool,
    prompt_hash: Callable[[Sequence[str]], str],
    device: str,
    tasks: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Merge this run's settings and finished tasks into the folder's record, atomically.

    Under the folder's record lock: reread, check the settings, add the tasks, recompute the
    prompt hash over every task of the record, write. Returns the new record.
    """
    from linq_eval import __version__

    with lock:
        record = read_run_record(folder) or {"tasks": {}}
        diffs = settings_differences(record.get("settings", {}), settings)
        if diffs and not allow_settings_change:
            raise ConfigError(
                f"{folder / RUN_RECORD} was written meanwhile with other settings:\n  "
                + "\n  ".join(diffs)
            )
        merged_tasks = dict(record.get("tasks") or {})
        merged_tasks.update(tasks or {})
        names: list[str] = []
        for name, entry in merged_tasks.items():
            names.append(name)
            names.extend(entry.get("subtasks") or [])
        new_settings = dict(settings)
        new_settings["prompt_hash"] = prompt_hash(names) if names else None
        record = {
            "linq_eval_version": __version__,
            "settings": new_settings,
            "tasks": dict(sorted(merged_tasks.items())),
            "versions": package_versions(),
            "device": device,
            "model_check": check_outcome(settings.get("model"), settings.get("revision")),
            "updated": _now(),
        }
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(folder / RUN_RECORD, record)
    return record


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


# --------------------------------------------------------------------------- summary


@dataclass
class TaskOutcome:
    """What happened to one task in this run."""

    name: str
    """mteb task name."""
    type: str
    """mteb task type."""
    status: str
    """``done earlier``, ``evaluated`` or ``failed``."""
    main_metric: str
    """The task's main metric (ndcg_at_10, cosine_spearman, accuracy ...)."""
    score: float | None = None
    """Main score on mteb's 0..1 scale (None if failed)."""
    wall_s: float = 0.0
    """Seconds spent on the task in this run (data loading, encoding, scoring)."""
    tokens: int = 0
    """Tokens encoded in this run (cached texts excluded)."""
    tokens_per_s: float | None = None
    """Encoding throughput (tokens / encoding seconds)."""
    texts: int = 0
    """Texts the task passed to the encoder (duplicates included)."""
    encoded_texts: int = 0
    """Distinct texts run through the model."""
    cached_texts: int = 0
    """Distinct texts taken from the embedding cache."""
    error: str | None = None
    """The error of a failed task."""
    data_source: str = "hub"
    """Where the task's data came from: ``hub`` (the Hugging Face cache) or ``local:<dir>``."""


@dataclass
class RunSummary:
    """What ``run_suite`` did."""

    config: RunConfig
    """The configuration it ran."""
    result_folder: Path
    """The ``<org__model>/<revision>`` folder of the results."""
    plan: Plan
    """The tasks of this run (or shard) with their estimates."""
    tasks: list[TaskOutcome] = field(default_factory=list)
    """One entry per task, in order (empty for a dry run)."""
    wall_s: float = 0.0
    """Seconds for the whole run."""
    cache: dict[str, int] | None = None
    """Embedding cache counters (hits, misses, chunks written, corrupt chunks)."""

    @property
    def failed(self) -> list[TaskOutcome]:
        return [t for t in self.tasks if t.status == "failed"]

    @property
    def encoded_texts(self) -> int:
        return sum(t.encoded_texts for t in self.tasks)


def _fmt_time(seconds: float) -> str:
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def format_outcome(outcome: TaskOutcome, position: str = "") -> str:
    """One line: ``[2/3] SciFact  ndcg_at_10 64.51  1m02s  2,345 tok/s  5,483 texts``."""
    head = f"{position} {outcome.name}" if position else outcome.name
    if outcome.status == "failed":
        return f"{head}  FAILED: {outcome.error}"
    score = "-" if outcome.score is None else f"{100 * outcome.score:.2f}"
    if outcome.status == "done earlier":
        return f"{head}  {outcome.main_metric} {score}  (done earlier)"
    rate = f"{outcome.tokens_per_s:,.0f} tok/s" if outcome.tokens_per_s else "- tok/s"
    cached = f", {outcome.cached_texts:,} cached" if outcome.cached_texts else ""
    return (
        f"{head}  {outcome.main_metric} {score}  {_fmt_time(outcome.wall_s)}  {rate}  "
        f"{outcome.texts:,} texts ({outcome.encoded_texts:,} encoded{cached})"
    )


def format_summary(summary: RunSummary) -> str:
    """The final table of scores (x100) with times, and where the results are."""
    rows = summary.tasks
    if not rows:
        return f"nothing to run; results in {summary.result_folder}\n"
    width = max(len(t.name) for t in rows)
    lines = [f"{'task':{width}}  {'type':18} {'metric':18} {'score':>7}  {'time':>7}  status"]
    for t in rows:
        score = "—" if t.score is None else f"{100 * t.score:.2f}"
        time_s = _fmt_time(t.wall_s) if t.status == "evaluated" else ""
        lines.append(
            f"{t.name:{width}}  {t.type:18} {t.main_metric:18} {score:>7}  {time_s:>7}  {t.status}"
        )
    scored = [t.score for t in rows if t.score is not None]
    if scored:
        mean = 100 * sum(scored) / len(scored)
        lines.append(f"mean of {len(scored)}/{len(rows)} tasks: {mean:.2f}")
    lines.append(f"results: {summary.result_folder}  ({_fmt_time(summary.wall_s)} in all)")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- planning


@dataclass
class _Prepared:
    tasks: list[AbsTask]
    all_tasks: list[AbsTask]
    profile: Profile
    meta: ModelMeta
    folder: Path
    plan: Plan


def result_folder(output: Path, meta: ModelMeta) -> Path:
    """``<output>/results/<org__model>/<revision>``: where mteb's ResultCache files a model."""
    return output / "results" / meta.model_name_as_path() / str(meta.revision)


def prepare(config: RunConfig) -> _Prepared:
    """Everything decided before a model is loaded: tasks, shard, instructions, plan."""
    config.check()
    all_tasks = select_tasks(config.benchmark, config.tasks, config.task_types)
    profile = resolve_profile(config)
    check_instructions(profile, expanded_names(all_tasks))
    prompts = profile_prompts(profile, expanded_names(all_tasks))
    estimates = [
        estimate_task(t, max_length=profile.max_length, prompts=prompts) for t in all_tasks
    ]
    tasks, chosen = all_tasks, estimates
    if config.shard is not None:
        names = set(assign_shards(estimates, config.shard.count)[config.shard.index - 1])
        tasks = [t for t in all_tasks if t.metadata.name in names]
        chosen = [e for e in estimates if e.name in names]
    meta = model_meta_for(profile)
    folder = result_folder(config.output, meta)
    chosen_names = [e.name for e in chosen]
    rows = [
        PlanRow(
            e,
            done=task_done(folder, t) if folder.is_dir() else False,
            shares_corpus_with=shared_corpus_of(e.name, chosen_names),
        )
        for e, t in zip(chosen, tasks, strict=True)
    ]
    plan = Plan(
        model=str(meta.name),
        revision=str(meta.revision),
        result_folder=str(folder),
        rows=rows,
        max_length=profile.max_length,
        tokens_per_s=config.tokens_per_s,
        shard=config.shard,
        all_tasks=len(all_tasks),
    )
    return _Prepared(tasks, all_tasks, profile, meta, folder, plan)


def plan_run(config: RunConfig) -> Plan:
    """The plan of a run (``linq-eval plan`` and ``--dry-run``); loads no model."""
    return prepare(config).plan


# --------------------------------------------------------------------------- running


def load_run_encoder(config: RunConfig, device: str | None) -> DecoderEncoder:
    """The encoder of a run: a profile / hub / local model, or a random Mistral."""
    options: dict[str, Any] = {
        "device": device,
        "dtype": config.dtype,
        "max_length": config.max_length,
        "policy": config.policy,
        "instructions": config.instructions,
        "token_budget": config.token_budget,
        "progress": config.progress,
    }
    if config.random_init:
        from linq_eval.model.random_models import random_encoder

        return random_encoder(config.random_init, **options)
    from linq_eval import load_encoder

    return load_encoder(config.model, revision=config.revision, **options)


@contextlib.contextmanager
def _quiet_superseded() -> Iterator[None]:
    """Hide mteb's 'task X is superseded' notes (benchmarks pin the versions they use) and
    pydantic's note on ModelMeta's similarity_fn_name given as a string."""

    class _Filter(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return "is superseded by" not in record.getMessage()

    mteb_logger = logging.getLogger("mteb.abstasks.abstask")
    filt = _Filter()
    mteb_logger.addFilter(filt)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is superseded by.*")
            warnings.filterwarnings("ignore", message="Pydantic serializer warnings")
            yield
    finally:
        mteb_logger.removeFilter(filt)


def _load_local(task: AbsTask, data_dir: Path | None) -> str:
    """Feed the task (or an aggregate's subtasks) from ``data_dir``; where its data comes from."""
    if data_dir is None:
        return "hub"
    from linq_eval.run.local_data import load_local_task

    parts = list(task.metadata.tasks) if task.is_aggregate else [task]
    loaded = [load_local_task(part, data_dir) for part in parts]
    if all(loaded):
        return f"local:{data_dir}"
    if any(loaded):
        return f"local:{data_dir} (some subtasks from the hub)"
    return "hub"


def _stats_snapshot(encoder: DecoderEncoder) -> dict[str, dict[str, float]]:
    return {k: dict(v) for k, v in encoder.stats.per_task.items()}


def _stats_delta(
    before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]
) -> dict[str, float]:
    total: dict[str, float] = {}
    for label, counts in after.items():
        old = before.get(label, {})
        for key, value in counts.items():
            total[key] = total.get(key, 0) + value - old.get(key, 0)
    return total


def _on_main(group: distributed.Group | None, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` on rank 0 only; its result, or its user error, reaches every rank."""
    outcome: dict[str, Any] = {"value": None, "error": None}
    if group is None or group.is_main:
        try:
            outcome["value"] = fn()
        except LinqEvalError as exc:
            if group is None:
                raise
            outcome["error"] = (type(exc).__name__, str(exc))
    outcome = distributed.broadcast_object(outcome, group)
    if outcome["error"]:
        kind, message = outcome["error"]
        raise (LockHeldError if kind == "LockHeldError" else ConfigError)(message)
    return outcome["value"]


def run_suite(config: RunConfig, echo: Callable[[str], None] | None = None) -> RunSummary:
    """Run the configured tasks (see the module docstring); returns what happened.

    ``echo`` receives the progress lines (one per finished task); the caller prints the final
    table with ``format_summary``. Under torchrun only rank 0 echoes and writes.
    """
    started = time.perf_counter()
    config.check()
    group = distributed.init_from_env(config.device)
    main = group is None or group.is_main
    say: Callable[[str], None] = echo if (echo is not None and main) else (lambda _line: None)

    prepared = prepare(config)
    plan, folder = prepared.plan, prepared.folder
    summary = RunSummary(config, folder, plan)
    if config.dry_run:
        return summary
    if not prepared.tasks:
        say(f"shard {config.shard} has no tasks")
        return summary

    lock_dir = config.output / ".linq_eval" / "locks" / folder.parent.name / folder.name
    record_lock = FileLock(lock_dir / "run_record.lock", what=f"the run record of {folder}")
    task_locks: list[FileLock] = []

    def start() -> list[str]:
        done = [
            t.metadata.name for t in prepared.tasks if task_done(folder, t, move_unreadable=True)
        ]
        task_locks.extend(_lock_tasks(prepared.tasks, done, lock_dir, config.output))
        # what killed runs of this host left half-written (never the targets themselves)
        remove_stale_temporaries(config.output, SCRATCH)
        if config.embedding_cache_dir is not None:
            remove_stale_temporaries(config.embedding_cache_dir)
        return done

    done_names = set(_on_main(group, start))
    try:
        encoder = load_run_encoder(config, group.device if group else config.device)
        encoder.chunk_texts = config.chunk_texts
        cache_dir = config.embedding_cache_dir
        if cache_dir is not None and main:
            from linq_eval.run.cache import open_cache

            encoder.embedding_cache = open_cache(cache_dir, encoder)
        settings = encoder.settings()
        if group is not None:
            settings["device"] = f"{encoder.device.type} x {group.world_size}"
        device = describe_device(encoder, group.world_size if group else 1)

        def record(tasks: dict[str, dict[str, Any]] | None = None) -> None:
            update_run_record(
                folder,
                record_lock,
                settings,
                allow_settings_change=config.allow_settings_change,
                prompt_hash=encoder.prompt_hash,
                device=device,
                tasks=tasks,
            )

        _on_main(group, record)  # settings checked against the folder before any work
        results_cache = AtomicResultCache(config.output, writable=main, lock=record_lock)
        n = len(prepared.tasks)
        for i, task in enumerate(prepared.tasks, start=1):
            name = task.metadata.name
            position = f"[{i}/{n}]"
            if name in done_names:
                outcome = TaskOutcome(
                    name,
                    task.metadata.type,
                    "done earlier",
                    task.metadata.main_score,
                    score=read_score(folder, task) if main else None,
                )
            else:
                distributed.barrier(group)
                outcome = _run_task(task, encoder, results_cache, config, group)
                if outcome.status == "evaluated":
                    entry = _record_entry(task, outcome, config, group, encoder) if main else {}
                    _on_main(group, lambda name=name, entry=entry: record({name: entry}))
            summary.tasks.append(outcome)
            say(format_outcome(outcome, position))
        if encoder.embedding_cache is not None:
            summary.cache = encoder.embedding_cache.stats.as_dict()
    finally:
        for lock in task_locks:
            lock.release()
    summary.wall_s = time.perf_counter() - started
    return summary


def _lock_tasks(
    tasks: Sequence[AbsTask], done: Sequence[str], lock_dir: Path, output: Path
) -> list[FileLock]:
    """Lock every task still to run; one error naming the holders when any is taken."""
    locks: list[FileLock] = []
    held: list[tuple[str, dict[str, Any]]] = []
    for task in tasks:
        name = task.metadata.name
        if name in done:
            continue
        lock = FileLock(lock_dir / f"{name}.lock", what=f"task {name}")
        try:
            locks.append(lock.acquire(timeout=0))
        except LockHeldError as exc:
            held.append((name, exc.holders[0] if exc.holders else {}))
    if held:
        for lock in locks:
            lock.release()
        from linq_eval.atomic import describe_holder

        holders = {describe_holder(h) for _, h in held}
        raise LockHeldError(
            f"Another linq-eval run is writing {len(held)} of these tasks to {output} right "
            f"now ({', '.join(n for n, _ in held)}): held by {'; '.join(sorted(holders))}. "
            "Wait for it to finish, give this run other tasks (--shard, --tasks), or use "
            "another --output.",
            [h for _, h in held],
        )
    return locks


def _run_task(
    task: AbsTask,
    encoder: DecoderEncoder,
    results_cache: Any,
    config: RunConfig,
    group: distributed.Group | None,
) -> TaskOutcome:
    import mteb

    name, meta = task.metadata.name, task.metadata
    outcome = TaskOutcome(name, meta.type, "evaluated", meta.main_score)
    t0 = time.perf_counter()
    before = _stats_snapshot(encoder)
    try:
        source = _load_local(task, config.data_dir)
        with _quiet_superseded():
            result = mteb.evaluate(
                encoder,
                task,
                cache=results_cache,
                overwrite_strategy="only-missing",
                encode_kwargs=dict(ENCODE_KWARGS),
                show_progress_bar=config.progress,
            )
        if result.exceptions:
            raise RuntimeError("; ".join(str(e.exception) for e in result.exceptions))
        task_result = result.task_results[0]
        outcome.score = float(task_result.get_score())
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        if group is not None:
            raise  # other ranks would wait forever for this one
        logger.debug("task %s failed:\n%s", name, traceback.format_exc())
        outcome.status = "failed"
        outcome.error = (
            f"{type(exc).__name__}: {exc}" if not isinstance(exc, LinqEvalError) else str(exc)
        )
        return outcome
    finally:
        with contextlib.suppress(Exception):
            for part in [task, *(task.metadata.tasks if task.is_aggregate else [])]:
                part.unload_data()
    outcome.wall_s = time.perf_counter() - t0
    delta = _stats_delta(before, _stats_snapshot(encoder))
    outcome.tokens = int(delta.get("tokens", 0))
    outcome.texts = int(delta.get("texts", 0))
    outcome.encoded_texts = int(delta.get("encoded_texts", 0))
    outcome.cached_texts = int(delta.get("cached_texts", 0))
    seconds = float(delta.get("seconds", 0.0))
    outcome.tokens_per_s = (
        round(outcome.tokens / seconds, 1) if seconds and outcome.tokens else None
    )
    outcome.data_source = source
    return outcome


def _record_entry(
    task: AbsTask,
    outcome: TaskOutcome,
    config: RunConfig,
    group: distributed.Group | None,
    encoder: DecoderEncoder,
) -> dict[str, Any]:
    meta = task.metadata
    entry: dict[str, Any] = {
        "main_metric": meta.main_score,
        "main_score": outcome.score,
        "wall_s": round(outcome.wall_s, 3),
        "tokens": outcome.tokens,
        "tokens_per_s": outcome.tokens_per_s,
        "texts": outcome.texts,
        "encoded_texts": outcome.encoded_texts,
        "cached_texts": outcome.cached_texts,
        "dataset_revision": meta.dataset.get("revision"),
        "data_source": outcome.data_source,
        "eval_splits": list(task.eval_splits),
        "prompt_hash": encoder.prompt_hash(expanded_names([task])),
        "finished": _now(),
        "shard": str(config.shard) if config.shard else None,
        "processes": group.world_size if group else 1,
    }
    if task.is_aggregate:
        entry["subtasks"] = [sub.metadata.name for sub in meta.tasks]
    return entry


__all__ = [
    "RUN_RECORD",
    "SCORE_SETTINGS",
    "AtomicResultCache",
    "RunConfig",
    "RunSummary",
    "TaskOutcome",
    "format_outcome",
    "format_summary",
    "plan_run",
    "read_run_record",
    "run_suite",
    "task_done",
]
