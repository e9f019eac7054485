"""The suite runner: every task of a benchmark through mteb, resumable, cached, sharded.

``run_suite(RunConfig(...))`` is the library call behind ``linq-eval run``:

    from linq_eval.run.config import RunConfig
    from linq_eval.run.runner import run_suite
    summary = run_suite(RunConfig(model="all-minilm-l6-v2", tasks=("SciFact",),
                                  data_dir=Path("../shared/data"), output=Path("runs/minilm")))

What it writes, under ``output``:

- ``<org__model>/<revision>/<Task>.json``: mteb's own result files, in the layout of mteb's
  results repository (``output`` is the results tree itself), each written atomically
  (``linq_eval.run.atomic_results``); beside each retrieval or reranking task's file, its
  per-query evidence ``<Task>.queries.json.gz``, bound to that file (``linq_eval.run.evidence``);
- ``linq_eval/run.json`` beside them: the run record (settings, versions, device, and per task
  the score-deciding settings it was made with, the data it read (absolute path or hub URI,
  and a hash of its content), its wall time, tokens/s and texts), merged across resumed runs
  and shards;
- ``.linq_eval/embeddings/``: the embedding cache (``linq_eval.run.cache``), unless
  ``cache_dir`` puts it elsewhere or ``use_cache`` is off;
- ``.linq_eval/locks/``: one lock per task being evaluated, so two runs cannot write the same
  task of the same folder at once (shards of one run, which hold different tasks, can).

Order of work: options are checked, tasks selected and the instruction set checked against
them before any model is loaded (``linq_eval.run.preparation``). A task is done when its result
file is complete, its per-query evidence (when kept) is bound to it, and the record says it was
made with the requested score-deciding settings; a task made with other
settings is an error naming it, or, with ``allow_settings_change``, evaluated again and its
entry replaced. The other tasks are evaluated one by one, each followed by a one-line summary
and an update of the run record.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mteb
import torch

from linq_eval.atomic import FileLock, describe_holder, remove_stale_temporaries
from linq_eval.benchmarks import expanded_names, mteb_tasks
from linq_eval.errors import ConfigError, EvidenceError, LinqEvalError, LockHeldError
from linq_eval.model.loading import load_encoder
from linq_eval.model.random_models import random_encoder
from linq_eval.paths import LOCKS_SUBDIR, SCRATCH
from linq_eval.prompts.builder import instruction_from
from linq_eval.provenance import now
from linq_eval.registry import TaskInfo
from linq_eval.results.per_query import read_bound_evidence
from linq_eval.results.reading import read_run_record
from linq_eval.run import distributed
from linq_eval.run.atomic_results import AtomicResultCache
from linq_eval.run.cache import open_cache
from linq_eval.run.cached_encoder import CachedEncoder
from linq_eval.run.config import RunConfig, resolve_profile
from linq_eval.run.evidence import prediction_folder, save_evidence
from linq_eval.run.local_data import (
    counting_skipped_lines,
    data_identity,
    load_local_task,
    require_task_data,
)
from linq_eval.run.plan import Plan, shard_line
from linq_eval.run.prefetch import hub_offline
from linq_eval.run.preparation import Prepared, prepare
from linq_eval.run.progress import SuiteProgress, library_bars, shows_bars
from linq_eval.run.result_store import (
    format_conflicts,
    read_score,
    task_conflicts,
    task_done,
    update_run_record,
)
from linq_eval.run.summary import EDGE_COUNTS, RunSummary, TaskOutcome, format_outcome
from linq_eval.run_record import score_part, task_settings
from linq_eval.writable import require_writable_folder

if TYPE_CHECKING:
    from mteb.abstasks import AbsTask

    from linq_eval.model.encoder import DecoderEncoder
    from linq_eval.model.resolved import ResolvedProfile

_logger = logging.getLogger(__name__)

_ENCODE_KWARGS = {"batch_size": 512}
"""What mteb passes to encode (the size of its data loader's batches: the encoder forms its own
batches by tokens), plus ``show_progress_bar``. mteb records them in run_settings.jsonl."""


# --------------------------------------------------------------------------- the encoder


def load_run_encoder(
    config: RunConfig, device: str | None, resolved: ResolvedProfile | None = None
) -> DecoderEncoder:
    """The encoder of a run, from its resolved profile (``prepare``'s; resolved here only when
    not given): a profile / hub / local model, or a random Mistral."""
    resolved = resolved if resolved is not None else resolve_profile(config)
    options: dict[str, Any] = {
        "device": device,
        "token_budget": config.token_budget,
        "progress": config.progress,
    }
    if config.random_init:
        return random_encoder(config.random_init, profile=resolved, **options)
    return load_encoder(resolved, **options)  # type: ignore[arg-type]


def task_prompt_hash(encoder: DecoderEncoder, task: TaskInfo) -> str:
    """The prompt hash the run record keeps for a task (its subtasks' prompts included)."""
    return encoder.prompt_hash(expanded_names([task]))


def _describe_device(encoder: DecoderEncoder, world_size: int) -> str:
    """``cuda:0 (NVIDIA H100 80GB HBM3) x 8 processes`` / ``cpu (2 threads)``."""
    dev = encoder.device
    if dev.type == "cuda":
        text = f"{dev} ({torch.cuda.get_device_name(dev)})"
    else:
        text = f"{dev} ({torch.get_num_threads()} threads)"
    if world_size > 1:
        text += f" x {world_size} processes"
    return text


# --------------------------------------------------------------------------- running


@contextlib.contextmanager
def _quiet_superseded() -> Iterator[None]:
    """Hide mteb's 'task X is superseded' notes (benchmarks pin the versions they use) and
    pydantic's note on ModelMeta's similarity_fn_name given as a string."""

    class _Filter(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return "is superseded by" not in record.getMessage()

    mteb_logger = logging.getLogger(mteb.AbsTask.__module__)  # the logger AbsTask warns on
    filt = _Filter()
    mteb_logger.addFilter(filt)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is superseded by.*")
            warnings.filterwarnings("ignore", message="Pydantic serializer warnings")
            yield
    finally:
        mteb_logger.removeFilter(filt)


def _load_local(task: AbsTask, data_dir: Path | None, outcome: TaskOutcome) -> tuple[str, str]:
    """Feed the task (or an aggregate's subtasks) from ``data_dir`` where it has a folder
    there; the data's source and content hash (``local_data.data_identity``, joined over an
    aggregate's subtasks). The blank lines skipped at the end of its files are counted in
    ``outcome``."""
    parts = list(task.metadata.tasks) if task.is_aggregate else [task]
    with counting_skipped_lines() as skipped:
        folders = [
            load_local_task(part, data_dir) if data_dir is not None else None for part in parts
        ]
    outcome.edge_cases["skipped_blank_lines"] = sum(skipped.values())
    found = [data_identity(part, folder) for part, folder in zip(parts, folders, strict=True)]
    if len(found) == 1:
        return found[0]
    sources = list(dict.fromkeys(source for source, _ in found))
    digest = hashlib.sha256(" ".join(h for _, h in found).encode()).hexdigest()[:32]
    return " + ".join(sources), f"sha256:{digest}"


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


class _Suite:
    """The state of one ``run_suite`` call: its folder, locks, encoder and settings.

    Rank 0 alone reads and writes the folder (``distributed.on_main``); the other ranks of a
    torchrun job receive what it decided.
    """

    def __init__(self, config: RunConfig, prepared: Prepared, group: distributed.Group | None):
        self.config, self.prepared, self.group = config, prepared, group
        self.main = group is None or group.is_main
        self.infos = {t.name: t for t in prepared.tasks}
        self.folder = folder = prepared.folder
        self.lock_dir = config.output / LOCKS_SUBDIR / folder.parent.name / folder.name
        self.record_lock = FileLock(
            self.lock_dir / "run_record.lock", what=f"the run record of {folder}"
        )
        self.task_locks: list[FileLock] = []
        self.done: set[str] = set()
        self.rerun: set[str] = set()
        self.settings: dict[str, Any] = {}
        self.device = ""
        self.encoder: DecoderEncoder | None = None

    def start(self) -> list[AbsTask]:
        """Before the model loads: find complete result files, lock every other task, remove
        what killed runs of this host left half-written (never the targets themselves).
        Returns mteb's task objects to run."""
        tasks = mteb_tasks(self.prepared.selection, list(self.infos))

        def start() -> list[str]:
            require_writable_folder(self.config.output, "--output")
            if self.config.embedding_cache_dir is not None:
                require_writable_folder(self.config.embedding_cache_dir, "--cache-dir")
            complete = [
                n for n, i in self.infos.items() if task_done(self.folder, i, move_unreadable=True)
            ]
            done = [n for n in complete if self._explained(self.infos[n])]
            todo = [t for t in tasks if t.metadata.name not in done]
            if self.config.data_dir is not None and hub_offline():  # a clear error, not the hub's
                require_task_data(todo, self.config.data_dir)
            self.lock([self.infos[t.metadata.name] for t in todo])
            remove_stale_temporaries(self.config.output, SCRATCH)
            if self.config.embedding_cache_dir is not None:
                remove_stale_temporaries(self.config.embedding_cache_dir)
            return complete, done

        complete, self.done = distributed.on_main(self.group, start)
        self.done = set(self.done)
        self.rerun = set(complete) - self.done  # results to replace: made with their evidence
        return tasks

    def _explained(self, info: TaskInfo) -> bool:
        """Whether a complete result has its per-query evidence, bound to it, where the run
        keeps evidence (a run killed between the two wrote the result only)."""
        if not (self.config.per_query and info.ranked):
            return True
        record = read_run_record(self.folder)
        try:
            for part in info.subtasks or (info.name,):
                own, _ = task_settings(record, info.name)
                if read_bound_evidence(self.folder, part, own) is None:
                    return False
        except EvidenceError:
            return False
        return True

    def lock(self, tasks: Sequence[TaskInfo]) -> None:
        self.task_locks.extend(_lock_tasks(tasks, self.lock_dir, self.config.output))

    def load_encoder(self) -> CachedEncoder:
        """The encoder, wrapped by the embedding cache (on rank 0), and its settings."""
        config, group = self.config, self.group
        device = group.device if group else config.device
        inner = load_run_encoder(config, device, self.prepared.resolved)
        cache_dir = config.embedding_cache_dir
        cache = open_cache(cache_dir, inner) if cache_dir is not None and self.main else None
        encoder = CachedEncoder(inner, cache, chunk_texts=config.chunk_texts)
        self.settings = encoder.settings()
        if group is not None:
            self.settings["device"] = f"{encoder.device.type} x {group.world_size}"
        self.device = _describe_device(encoder, group.world_size if group else 1)
        self.encoder = encoder
        return encoder

    def check_settings(self) -> None:
        """Done tasks made with other score-deciding settings: an error naming them, or (when
        allowed) locked to run again. Then the folder's record is checked and updated."""

        def check() -> list[str]:
            done = [self.infos[name] for name in self.infos if name in self.done]
            hashes = {t.name: task_prompt_hash(self.encoder, t) for t in done}
            record = read_run_record(self.folder)
            stale = task_conflicts(record, score_part(self.settings), hashes, hashes)
            if stale and not self.config.allow_settings_change:
                raise ConfigError(
                    f"{self.folder} holds results of {', '.join(stale)} made with other "
                    f"settings:\n{format_conflicts(stale)}\nUse another --output, or "
                    "--allow-settings-change to evaluate them again and replace them."
                )
            self.lock([t for t in done if t.name in stale])
            self.record()
            return sorted(stale)

        stale = set(distributed.on_main(self.group, check))
        self.rerun |= stale
        self.done -= stale

    def record(self, tasks: dict[str, dict[str, Any]] | None = None) -> None:
        update_run_record(
            self.folder,
            self.record_lock,
            self.settings,
            allow_settings_change=self.config.allow_settings_change,
            prompt_hash=self.encoder.prompt_hash,
            device=self.device,
            tasks=tasks,
        )

    def run(self, task: AbsTask, results_cache: AtomicResultCache) -> TaskOutcome:
        """Evaluate one task (or report it done) and record it."""
        info = self.infos[task.metadata.name]
        if info.name in self.done:
            score = read_score(self.folder, info) if self.main else None
            return TaskOutcome(info.name, info.type, "done earlier", info.main_score, score=score)
        distributed.barrier(self.group)
        settings = {
            **score_part(self.settings),
            "prompt_hash": task_prompt_hash(self.encoder, info),
        }
        outcome = _run_task(
            task,
            info,
            self.encoder,
            results_cache,
            self.config,
            self.group,
            self.folder,
            settings=settings,
            overwrite=info.name in self.rerun,
        )
        if outcome.status == "evaluated":
            resolved = self.prepared.resolved
            prompts = resolved.prompts([info.name])[info.name]
            outcome.instruction_from = instruction_from(
                info.name, prompts, resolved.instruction_set
            )
            entry = _record_entry(info, outcome, self.config, self.group) if self.main else {}
            distributed.on_main(self.group, lambda: self.record({info.name: entry}))
        return outcome

    def release(self) -> None:
        for lock in self.task_locks:
            lock.release()


def run_suite(
    config: RunConfig,
    echo: Callable[[str], None] | None = None,
    prepared: Prepared | None = None,
) -> RunSummary:
    """Run the configured tasks (see the module docstring); returns what happened.

    ``echo`` receives the progress lines (one per finished task); the caller prints the final
    table with ``format_summary``. Under torchrun only rank 0 echoes and writes. ``prepared``:
    ``prepare(config)``, when the caller has it already.
    """
    started = time.perf_counter()
    config.check()
    group = distributed.init_from_env(config.device)
    main = group is None or group.is_main
    say: Callable[[str], None] = echo if (echo is not None and main) else (lambda _line: None)

    prepared = prepared if prepared is not None else prepare(config)
    summary = RunSummary(config, prepared.folder, prepared.plan)
    if config.dry_run:
        return summary
    if config.shard is not None:
        say(shard_line(prepared.plan))
    if not prepared.tasks:
        return summary
    suite = _Suite(config, prepared, group)
    try:
        tasks = suite.start()
        with library_bars(shows_bars(config.progress and not config.quiet)):
            encoder = suite.load_encoder()
        suite.check_settings()  # before any work
        results_cache = AtomicResultCache(config.output, writable=main, lock=suite.record_lock)
        n = len(tasks)
        progress = _suite_progress(prepared.plan, suite.rerun, quiet=config.quiet or not main)
        with (
            progress.watch(lambda: encoder.stats.forwarded_tokens),
            library_bars(shows_bars(config.progress)),
        ):
            for i, task in enumerate(tasks, start=1):
                name = task.metadata.name
                done = name in suite.done
                if done:
                    progress.skip(name)
                else:
                    progress.start(name)
                outcome = suite.run(task, results_cache)
                if not done:
                    progress.finish(name, outcome.status)
                summary.tasks.append(outcome)
                say(format_outcome(outcome, f"[{i}/{n}]"))
        if encoder.cache is not None:
            summary.cache = encoder.cache.stats.as_dict()
    finally:
        suite.release()
    summary.wall_s = time.perf_counter() - started
    return summary


def _suite_progress(plan: Plan, rerun: set[str], *, quiet: bool) -> SuiteProgress:
    """The suite's progress view, sized by the plan's tokens still to encode per task (a task
    done earlier but run again, made with other settings, counts whole)."""
    sizes = [
        (r.estimate.name, r.estimate.tokens if r.estimate.name in rerun else r.tokens_to_encode)
        for r in plan.rows
    ]
    return SuiteProgress(sizes, quiet=quiet)


def _lock_tasks(tasks: Sequence[TaskInfo], lock_dir: Path, output: Path) -> list[FileLock]:
    """Lock every task of ``tasks``; one error naming the holders when any is taken."""
    locks: list[FileLock] = []
    held: list[tuple[str, dict[str, Any]]] = []
    for task in tasks:
        name = task.name
        lock = FileLock(lock_dir / f"{name}.lock", what=f"task {name}")
        try:
            locks.append(lock.acquire(timeout=0))
        except LockHeldError as exc:
            held.append((name, exc.holders[0] if exc.holders else {}))
    if held:
        for lock in locks:
            lock.release()
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
    info: TaskInfo,
    encoder: DecoderEncoder,
    results_cache: Any,
    config: RunConfig,
    group: distributed.Group | None,
    folder: Path,
    *,
    settings: Mapping[str, Any],
    overwrite: bool = False,
) -> TaskOutcome:
    """Evaluate one task through mteb (``overwrite``: replace its complete result file); keep
    its per-query evidence in ``folder`` when it is ranked per query, bound to the result and
    to ``settings`` (the task's score settings, its data's identity added here)."""
    outcome = TaskOutcome(info.name, info.type, "evaluated", info.main_score)
    t0 = time.perf_counter()
    before = _stats_snapshot(encoder)
    try:
        outcome.data_source, data_hash = _load_local(task, config.data_dir, outcome)
        outcome.settings = {**settings, "data_hash": data_hash}
        evidence = config.per_query and info.ranked
        bars = shows_bars(config.progress and not config.quiet)
        if evidence and not task.is_aggregate and not task.data_loaded:
            task.load_data()  # kept loaded: the evidence needs the qrels after the evaluation
        with _quiet_superseded(), prediction_folder(config.output / SCRATCH, evidence) as preds:
            result = mteb.evaluate(
                encoder,
                task,
                cache=results_cache,
                overwrite_strategy="always" if overwrite else "only-missing",
                encode_kwargs={**_ENCODE_KWARGS, "show_progress_bar": bars},
                show_progress_bar=bars,
                prediction_folder=preds,
            )
            if result.exceptions:
                raise RuntimeError("; ".join(str(e.exception) for e in result.exceptions))
            outcome.score = float(result.task_results[0].get_score())
            if preds is not None and (group is None or group.is_main):
                save_evidence(task, preds, folder, outcome.settings)
    except (KeyboardInterrupt, LinqEvalError):
        raise  # bad input (a data file, a setting) makes the run unusable: exit 2, not 1
    except Exception as exc:
        if group is not None:
            raise  # other ranks would wait forever for this one
        _logger.debug("task %s failed:\n%s", info.name, traceback.format_exc())
        outcome.status = "failed"
        outcome.error = f"{type(exc).__name__}: {exc}"
        return outcome
    finally:
        with contextlib.suppress(Exception):
            for part in [task, *(task.metadata.tasks if task.is_aggregate else [])]:
                if part.data_loaded:
                    part.unload_data()
    outcome.wall_s = time.perf_counter() - t0
    delta = _stats_delta(before, _stats_snapshot(encoder))
    outcome.tokens = int(delta.get("tokens", 0))
    outcome.texts = int(delta.get("texts", 0))
    outcome.encoded_texts = int(delta.get("encoded_texts", 0))
    outcome.cached_texts = int(delta.get("cached_texts", 0))
    outcome.unique_texts = int(delta.get("unique_texts", 0))
    outcome.edge_cases = {k: int(delta.get(k, outcome.edge_cases.get(k, 0))) for k in EDGE_COUNTS}
    seconds = float(delta.get("seconds", 0.0))
    outcome.tokens_per_s = (
        round(outcome.tokens / seconds, 1) if seconds and outcome.tokens else None
    )
    return outcome


def _record_entry(
    info: TaskInfo, outcome: TaskOutcome, config: RunConfig, group: distributed.Group | None
) -> dict[str, Any]:
    """The task's entry in the run record, with the settings it was made with."""
    entry: dict[str, Any] = {
        "main_metric": info.main_score,
        "main_score": outcome.score,
        "wall_s": round(outcome.wall_s, 3),
        "tokens": outcome.tokens,
        "tokens_per_s": outcome.tokens_per_s,
        "texts": outcome.texts,
        "encoded_texts": outcome.encoded_texts,
        "cached_texts": outcome.cached_texts,
        "unique_texts": outcome.unique_texts,
        **outcome.edge_cases,
        "dataset_revision": info.dataset_revision,
        "data_source": outcome.data_source,
        "eval_splits": list(info.eval_splits),
        "finished": now(),
        "shard": str(config.shard) if config.shard else None,
        "processes": group.world_size if group else 1,
        "settings": outcome.settings,
        "instruction_from": outcome.instruction_from,
    }
    if info.is_aggregate:
        entry["subtasks"] = list(info.subtasks)
    return entry


__all__ = ["load_run_encoder", "run_suite", "task_prompt_hash"]
