"""The settings that usually explain a gap between a reproduction and its published score, as
data: which setting, the values worth trying, for which kind of model, why it is a suspect and
where that is documented. ``linq-eval explain`` tries each, one change at a time.

A decoder embedder (last-token pooling) and an encoder (mean pooling) have different suspects:
a decoder's EOS, precision, max_length, instruction policy and instruction set; an encoder's
max_length, pooling and normalisation.

    from linq_eval.run.gap_candidates import candidates_for
    [c.id for c in candidates_for(profile)]      # ['eos=none', 'dtype=bfloat16', ...]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from linq_eval.errors import UnknownNameError
from linq_eval.profiles import (
    DTYPE_NAMES,
    REPRODUCTION_MAX_LENGTH,
    Profile,
    card_max_length,
)

_DECODER, _ENCODER = "decoder", "encoder"
"""The kinds of model: last-token pooling (decoder embedders) or mean pooling (encoders)."""


@dataclass(frozen=True)
class Suspect:
    """One setting that commonly explains a gap, and the values to try."""

    setting: str
    """The profile setting changed (one of ``profiles.GIVEN_OPTIONS``)."""
    kinds: tuple[str, ...]
    """The kinds of model it is a suspect for."""
    values: Callable[[Profile], Sequence[Any]]
    """The values worth trying, given the model's own profile (the run's value is left out)."""
    reason: str
    """Why it is a usual suspect."""
    source: str
    """Where that is documented."""


@dataclass(frozen=True)
class Candidate:
    """One change of one setting from a run's own settings."""

    suspect: Suspect
    value: Any

    @property
    def id(self) -> str:
        """``max_length=256``: what ``--candidates`` names and the folder its results go to."""
        return f"{self.suspect.setting}={self.value}"

    def applied(self, profile: Profile) -> Profile:
        """The run's profile with this one change."""
        return profile.with_given(**{self.suspect.setting: self.value})


_SUSPECTS: tuple[Suspect, ...] = (
    Suspect(
        "eos",
        (_DECODER,),
        lambda p: ("append", "none"),
        "last-token pooling reads whatever ends the input: without EOS, the last word",
        "mteb pull request 5237 (transformers 5 stopped appending </s>: e5-mistral nDCG@10 "
        "0.374 -> 0.065); README 'What the encoder guarantees'",
    ),
    Suspect(
        "dtype",
        (_DECODER,),
        lambda p: DTYPE_NAMES,
        "the precision the evaluation ran in (fp16 overflows where bf16 does not; a model "
        "trained in one precision can collapse in another)",
        "mteb issues on gte-Qwen2-7B-instruct in fp16 (0.07 instead of 0.51); the e5 "
        "evaluation code runs fp16 weights under autocast",
    ),
    Suspect(
        "max_length",
        (_DECODER,),
        lambda p: (REPRODUCTION_MAX_LENGTH, card_max_length()),
        "inputs cut at another length: the evaluation code's 512 against the model card's",
        "e5 evaluation code (max_length 512); the model card's usage example (4096)",
    ),
    Suspect(
        "policy",
        (_DECODER,),
        lambda p: ("e5", "mteb"),
        "which inputs carry the instruction: the authors' evaluation code or mteb's wrapper",
        "mteb issues: EmbeddingGemma without its task prompts (0.306 instead of 0.715); "
        "linq_eval/prompts/policies.py",
    ),
    Suspect(
        "instructions",
        (_DECODER,),
        lambda p: ("e5", "mteb-v2"),
        "the instruction texts: the authors' or mteb's task prompts",
        "mteb issues: Qwen3-Embedding's own harness overrides the STS prompts; "
        "task_instructions/README.md",
    ),
    Suspect(
        "max_length",
        (_ENCODER,),
        lambda p: (p.max_length, p.model_max_length),
        "inputs cut at another length: the model's configured length against its limit",
        "sentence-transformers' max_seq_length (256 for all-MiniLM-L6-v2) against the "
        "position embeddings' 512",
    ),
    Suspect(
        "pooling",
        (_DECODER, _ENCODER),
        lambda p: ("mean", "last"),
        "how one vector is made of the token states",
        "sentence-transformers Pooling configuration (modules.json) of the model",
    ),
    Suspect(
        "policy",
        (_ENCODER,),
        lambda p: ("none", "unnormalised"),
        "whether embeddings are L2-normalised before scoring (classifiers and dot products "
        "see the difference)",
        "sentence-transformers Normalize module; linq_eval/prompts/policies.py",
    ),
)
"""Every usual suspect, per kind of model."""


def candidates_for(run: Profile, own: Profile, chosen: Sequence[str] = ()) -> list[Candidate]:
    """The changes worth trying from ``run`` (the profile as the run used it; ``own``: the
    model's profile as shipped), one setting at a time; with ``chosen`` only those
    (``max_length`` for every value, ``max_length=256`` for one)."""
    kind = _DECODER if own.pooling == "last" else _ENCODER
    found = [
        Candidate(s, value)
        for s in _SUSPECTS
        if kind in s.kinds
        for value in dict.fromkeys(s.values(own))
        if value != getattr(run, s.setting)
        and (s.setting != "max_length" or value <= run.model_max_length)
    ]
    if not chosen:
        return found
    known = {c.id for c in found} | {c.suspect.setting for c in found}
    unknown = [c for c in chosen if c not in known]
    if unknown:
        raise UnknownNameError("candidate", unknown[0], sorted(known))
    return [c for c in found if c.id in chosen or c.suspect.setting in chosen]


__all__ = ["Candidate", "Suspect", "candidates_for"]
