"""Where each profile's conventions come from, what they were verified against, and where
they differ from mteb's own implementation of the model; the leaderboard models linq-eval
cannot run, with the reason. Data only: ``linq-eval profiles`` shows it, tests check it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from linq_eval.profiles import DEFAULT_PROFILE

_MTEB_SOURCE = "mteb/models/model_implementations of the installed mteb"
"""Where mteb implements the models (compared, on every test run, by test_mteb_parity.py)."""

_MTEB_PARITY = (
    "tests/test_mteb_parity.py: embeddings equal to mteb's own implementation "
    "(mteb.get_model_meta(name).loader with its loader_kwargs, float32) on a tiny random "
    "model of the architecture, queries, documents and unlabelled inputs of one task of each "
    "task type of MTEB(eng, v2)"
)
_E5_RECIPE = (
    "tests/test_encoder.py: the card's recipe written out plainly (BOS + text + EOS, "
    "last token, L2), on the tiny random Mistral with Mistral-7B's tokenizer"
)
_CARD_CHECK = "linq-eval check: the card example's scores with the real weights (GPU)"

_EOS_DROPPED = (
    "mteb's implementation passes no add_eos_token: under transformers 5 the repository's "
    "tokenizer.json (which adds only <s>, as mteb notes for e5-mistral) decides, so no </s> "
    "ends the input and last-token pooling reads the last word of the text. The model was "
    "trained with </s> last (e5 recipe, model card), so linq-eval appends it; "
    "eos='none' reproduces mteb's output (test_mteb_parity shows both)."
)
_MAX_LENGTH_REPO = (
    "mteb truncates at the repository's sentence_bert_config.json max_seq_length, which is "
    "not readable offline; the profile's max_length is stated in its sources. Equal for "
    "inputs shorter than both."
)
_E5_DTYPE = (
    "the e5 evaluation code behind the published scores ran fp16; mteb loads {mteb}. "
    "--dtype {mteb} gives mteb's."
)


@dataclass(frozen=True)
class ProfileSources:
    """Provenance of one profile."""

    sources: tuple[str, ...]
    """Where its conventions come from (model card, evaluation code, mteb's implementation)."""
    verified_against: tuple[str, ...]
    """The tests and checks that compare it with an independent implementation."""
    mteb_differences: dict[str, str] = field(default_factory=dict)
    """Setting → why it differs from mteb's implementation under ``--policy mteb`` and the
    instructions mteb gives (``mteb-v2``). Settings not named here are equal (tested)."""


def _e5_mistral(card: str, mteb_file: str, *checks: str, **differences: str) -> ProfileSources:
    return ProfileSources(
        sources=(
            card,
            (
                "microsoft/unilm e5/utils.py and e5 evaluation scripts (fp16, max_length 512, "
                "EOS appended, instructions: task_instructions/e5.yaml)"
            ),
            f"{_MTEB_SOURCE}/{mteb_file} (the --policy mteb conventions)",
        ),
        verified_against=(_E5_RECIPE, _MTEB_PARITY, *checks),
        mteb_differences={"max_length": _MAX_LENGTH_REPO, **differences},
    )


def _mteb_model(card: str, mteb_file: str, **differences: str) -> ProfileSources:
    return ProfileSources(
        sources=(f"{_MTEB_SOURCE}/{mteb_file}", card),
        verified_against=(_MTEB_PARITY,),
        mteb_differences={"max_length": _MAX_LENGTH_REPO, **differences},
    )


_QWEN3 = _mteb_model(
    "model card: Qwen/Qwen3-Embedding-* (get_detailed_instruct, left padding, last token, "
    "max_length 8192)",
    "qwen3_models.py (q3e_instruct_loader, instruction_template)",
)

SOURCES: dict[str, ProfileSources] = {
    DEFAULT_PROFILE: _e5_mistral(
        "model card: Linq-AI-Research/Linq-Embed-Mistral (points to the e5 code)",
        "linq_models.py",
        _CARD_CHECK,
        eos=_EOS_DROPPED,
        dtype=_E5_DTYPE.format(mteb="bfloat16"),
    ),
    "e5-mistral-7b-instruct": _e5_mistral(
        "model card: intfloat/e5-mistral-7b-instruct",
        "e5_instruct.py (add_eos_token=True and add_bos_token: </s> ends every input)",
    ),
    "sfr-embedding-mistral": _e5_mistral(
        "model card: Salesforce/SFR-Embedding-Mistral (e5-mistral's usage code)",
        "salesforce_models.py",
        eos=_EOS_DROPPED,
    ),
    "sfr-embedding-2r": _mteb_model(
        "model card: Salesforce/SFR-Embedding-2_R (e5-mistral's usage code, max_length 4096)",
        "salesforce_models.py",
        eos=_EOS_DROPPED,
        dtype=(
            "mteb loads auto: the checkpoint's own dtype, which mteb's metadata does not "
            "record for this model (not knowable offline); the profile runs bfloat16 on CUDA, "
            "as mteb loads Linq-Embed-Mistral, the other Mistral embedder without an fp16 "
            "evaluation code. --dtype float16 if the checkpoint is fp16."
        ),
    ),
    "gte-qwen2-7b-instruct": _mteb_model(
        "model card: Alibaba-NLP/gte-Qwen2-7B-instruct (max_length 8192)",
        "gte_models.py (instructs queries only, add_eos_token=True, bf16)",
        modelling=(
            "mteb loads the repository's modeling_qwen.py (trust_remote_code); linq-eval "
            "never runs hub code and uses transformers' Qwen2Model. The card says gte-Qwen2 "
            "uses bidirectional attention; if its modelling file does, the real model's "
            "embeddings differ from linq-eval's. Not verifiable offline; the tiny-model test "
            "compares transformers' Qwen2Model on both sides."
        ),
    ),
    "qwen3-embedding-0.6b": _QWEN3,
    "qwen3-embedding-4b": _QWEN3,
    "qwen3-embedding-8b": _QWEN3,
    "all-minilm-l6-v2": ProfileSources(
        sources=("sentence-transformers/all-MiniLM-L6-v2 (mean pooling, 256 tokens)",),
        verified_against=(
            (
                "tests/conftest.py minilm_run: published MTEB scores of SciFact, STSBenchmark, "
                "Banking77Classification on the real weights"
            ),
        ),
    ),
}

UNSUPPORTED: dict[str, str] = {
    "GritLM/GritLM-7B": (
        "mean pooling over the text only, its prompt (<|user|> ... <|embed|>) left out "
        "(mteb: include_prompt=False), and bidirectional attention as the gritlm package runs "
        "it; linq-eval's decoder encoder has neither, and gritlm is not installable offline "
        "here with a test of its own"
    ),
    "nvidia/NV-Embed-v2": (
        "needs the repository's own modelling code (latent-attention pooling, bidirectional "
        "Mistral) loaded with trust_remote_code; no well-kept package provides it offline"
    ),
}
"""Leaderboard decoders of the published MTEB(eng, v2) set that no profile covers, and why."""


__all__ = ["SOURCES", "UNSUPPORTED", "ProfileSources"]
