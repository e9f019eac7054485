"""What one ``linq-eval run`` is asked to do: ``RunConfig``, its checks, and the profile,
instruction set and prompts it resolves to, all decided before any model is loaded.

    from linq_eval.run.config import RunConfig, resolve_profile
    config = RunConfig(model="all-minilm-l6-v2", tasks=("SciFact",), max_length=128)
    config.check()                              # one ConfigError listing every bad option
    resolved = resolve_profile(config)          # once per run; later steps read it
    resolved.profile.max_length, resolved.policy.name   # (128, 'none')
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from linq_eval.benchmarks import selection_problems
from linq_eval.defaults import DEFAULT_CHUNK_TEXTS
from linq_eval.errors import ConfigError
from linq_eval.model.resolved import ResolvedProfile, resolve
from linq_eval.paths import CACHE_SUBDIR
from linq_eval.profiles import (
    DEFAULT_PROFILE,
    DTYPE_ALIASES,
    DTYPE_NAMES,
    EOS_CHOICES,
    GIVEN_OPTIONS,
    MIN_MAX_LENGTH,
    POOLING_CHOICES,
    RANDOM_MISTRALS,
    profile_for_model,
    random_profile,
)
from linq_eval.run.plan import DEFAULT_TOKENS_PER_S, Shard


@dataclass(frozen=True)
class RunConfig:
    """One ``linq-eval run``: which model, which tasks, which settings, where to write."""

    model: str = DEFAULT_PROFILE
    """Profile name, hub id (org/name) or local model directory."""
    revision: str | None = None
    """Hub revision of the model (None: the profile's pinned revision)."""
    benchmark: str | None = None
    """mteb benchmark the tasks are taken from, with its subsets and splits (None: the
    default benchmark)."""
    tasks: tuple[str, ...] = ()
    """Exact mteb task names: only these, each as the benchmark scores it (whole when the
    benchmark does not contain it)."""
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
    eos: str | None = None
    """append (every input ends with EOS) or none (None: the profile's)."""
    pooling: str | None = None
    """last or mean (None: the profile's)."""
    padding_side: str | None = None
    """left or right (None: the profile's)."""
    output: Path = Path("results")
    """Output folder: mteb's results/ tree, the run record, the embedding cache."""
    data_dir: Path | None = None
    """Folder of local task data (linq_eval.run.local_data); tasks without a folder use the hub."""
    cache_dir: Path | None = None
    """Embedding cache folder (None: ``<output>/.linq_eval/embeddings``)."""
    use_cache: bool = True
    """Keep embeddings on disk (False: nothing cached; a killed task restarts from zero)."""
    chunk_texts: int = DEFAULT_CHUNK_TEXTS
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
    """Let this run add to a folder whose tasks were made with other score-deciding settings,
    and run again (replacing them) the tasks of this run that were."""
    progress: bool = True
    """Show progress bars (the current encode call's)."""
    quiet: bool = False
    """No progress output at all (CI logs): neither bars nor the suite's progress lines."""
    per_query: bool = True
    """Keep per-query evidence of retrieval and reranking tasks beside their result files
    (``<Task>.queries.json.gz``: each query's main metric and top-10 ids)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "output", Path(self.output))
        for name in ("data_dir", "cache_dir"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value))
        object.__setattr__(self, "tasks", tuple(self.tasks))
        object.__setattr__(self, "task_types", tuple(self.task_types))

    def check(self) -> None:
        """Raise one ConfigError listing every unusable or conflicting option. Names come
        first: an unknown model is answered before anything is read."""
        if self.random_init is None:
            profile_for_model(self.model)  # an unknown profile: "Did you mean"
        problems = [*self._option_problems(), *self._random_init_problems()]
        if self.output.exists() and not self.output.is_dir():
            problems.append(f"--output {self.output} exists and is not a folder")
        if self.data_dir is not None and not self.data_dir.is_dir():
            problems.append(f"--data-dir {self.data_dir} is not a folder")
        if not self.use_cache and self.cache_dir is not None:
            problems.append("--cache-dir given together with --no-cache")
        if problems:
            raise ConfigError("Conflicting or invalid options:\n  " + "\n  ".join(problems))

    def _option_problems(self) -> list[str]:
        problems = selection_problems(self.tasks, self.task_types)
        if self.max_length is not None and self.max_length < MIN_MAX_LENGTH:
            problems.append(f"--max-length {self.max_length} is below {MIN_MAX_LENGTH}")
        if self.dtype is not None:
            name = DTYPE_ALIASES.get(self.dtype, self.dtype)
            if name != "auto" and name not in DTYPE_NAMES:
                problems.append(f"--dtype {self.dtype!r}: valid are auto, {', '.join(DTYPE_NAMES)}")
        for name, valid in (("eos", EOS_CHOICES), ("pooling", POOLING_CHOICES)):
            value = getattr(self, name)
            if value is not None and value not in valid:
                problems.append(f"--{name} {value!r}: valid are {', '.join(valid)}")
        if self.chunk_texts < 1:
            problems.append(f"--chunk-texts {self.chunk_texts}: must be at least 1")
        if self.tokens_per_s <= 0:
            problems.append("--tokens-per-s must be positive")
        return problems

    def _random_init_problems(self) -> list[str]:
        if self.random_init is None:
            return []
        problems: list[str] = []
        if self.random_init not in RANDOM_MISTRALS:
            problems.append(
                f"--random-init {self.random_init!r}: valid sizes are {', '.join(RANDOM_MISTRALS)}"
            )
        if self.model != DEFAULT_PROFILE:
            problems.append("--random-init replaces the model: do not give --model with it")
        if self.revision is not None:
            problems.append("--random-init has no revision: do not give --revision with it")
        return problems

    @property
    def embedding_cache_dir(self) -> Path | None:
        if not self.use_cache:
            return None
        return self.cache_dir if self.cache_dir is not None else self.output / CACHE_SUBDIR


def resolve_profile(config: RunConfig) -> ResolvedProfile:
    """The profile the run will use, the config's overrides applied (the only place they are;
    no weights are read), resolved with its policy and instruction set. Checks the policy and
    that the token budget holds the longest input.
    """
    if config.random_init:
        profile = random_profile(config.random_init)
    else:
        profile = profile_for_model(config.model)
    given = {key: getattr(config, key, None) or None for key in GIVEN_OPTIONS}
    if config.random_init:
        given["revision"] = None  # a random model's revision is its seed
    profile = profile.with_given(**given)
    resolved = resolve(profile)  # an unknown policy: "Did you mean"
    if config.instructions and not resolved.policy.instruct:
        raise ConfigError(
            f"--instructions {config.instructions} has no effect: policy {profile.policy!r} "
            f"(of profile {profile.name}{' and --policy' if config.policy else ''}) gives no "
            "input an instruction. Drop --instructions, or choose a policy that instructs "
            "(--policy e5 or mteb)."
        )
    if config.token_budget is not None and config.token_budget < profile.max_length:
        raise ConfigError(
            f"--token-budget {config.token_budget} is below max_length {profile.max_length}: "
            "the longest input would not fit in a batch"
        )
    return resolved


__all__ = ["RunConfig", "resolve_profile"]
