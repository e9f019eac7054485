"""MTEB-like length mixes: the texts the throughput benchmark (linq_eval.bench.throughput) encodes.

Two sources, both deterministic for a given seed:

- ``scifact``: the real SciFact corpus and queries from ``../shared/data/scifact`` (BEIR
  layout). Documents are ``(title + " " + text).strip()`` as in BEIR and e5's evaluation code;
  queries carry SciFact's e5 instruction prefix, as an instructed query does in a real run.
- ``synthetic``: documents whose lengths follow the big retrieval corpora that make up 69% of
  the suite's tokens (MS MARCO, FEVER, Climate-FEVER, HotpotQA, DBPedia, NQ).

Where the synthetic statistics come from:

- Corpus sizes and mean words per document: BEIR, Thakur et al. 2021, "BEIR: A Heterogenous
  Benchmark for Zero-shot Evaluation of Information Retrieval Models", Table 1 (columns
  "#Corpus" and "Avg. Word Lengths / Document"). Texts are drawn from the corpora in proportion
  to their sizes, as a full run encodes them.
- Tokens per word: not sampled, it follows from tokenizing the generated words. Their pool
  mixes one-, two- and three-token words so that Mistral's tokenizer gives 1.37 tokens per
  word (measured on 20,000 texts), the ratio at which the six corpora come to 2.87 G tokens,
  close to the 69% of the suite's 4.1 G tokens that issue 5 quotes (2.83 G).
- Spread: lognormal word counts with the BEIR means. The shape parameters (``sigma``) are our
  assumption, not a published figure: 0.45 for MS MARCO and NQ (passages cut to a near-fixed
  size), 0.7 for the Wikipedia-abstract corpora (FEVER, Climate-FEVER, HotpotQA, DBPedia). For
  comparison, SciFact's documents measure sigma 0.37 here.

Every text is distinct (a bench must not be flattered by deduplication), and the mix is
shuffled, as mteb hands a corpus over in its own order.

    from linq_eval.bench.lengthmix import length_mix
    texts = length_mix("both", 2000, seed=0)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from linq_eval.errors import ConfigError, UnknownNameError
from linq_eval.paths import SCIFACT_ENV, scifact_override, shared_data_candidates
from linq_eval.profiles import DEFAULT_PROFILE, get_profile
from linq_eval.prompts.builder import prompt_for
from linq_eval.prompts.instruction_sets import load_instruction_set

_MIXES = ("scifact", "synthetic", "both")


@dataclass(frozen=True)
class CorpusStats:
    """Length statistics of one retrieval corpus."""

    name: str
    """BEIR / mteb name."""
    documents: int
    """Number of documents (BEIR Table 1, #Corpus)."""
    mean_words: float
    """Mean words per document (BEIR Table 1, Avg. Word Lengths, Document)."""
    sigma: float
    """Lognormal shape of the word count (our assumption, see the module docstring)."""


BIG_CORPORA: tuple[CorpusStats, ...] = (
    CorpusStats("MSMARCO", 8_841_823, 55.98, 0.45),
    CorpusStats("FEVER", 5_416_568, 84.76, 0.7),
    CorpusStats("ClimateFEVER", 5_416_593, 84.76, 0.7),
    CorpusStats("HotpotQA", 5_233_329, 46.30, 0.7),
    CorpusStats("DBPedia", 4_635_922, 49.68, 0.7),
    CorpusStats("NQ", 2_681_468, 78.88, 0.45),
)

# Word pool: common words (one Mistral token each with their leading space), longer words (two
# or three), and a few numbers and punctuated words. Drawn with the weights below.
# fmt: off
_SHORT = (
    "the", "of", "and", "to", "in", "a", "is", "was", "for", "on", "as", "with", "by", "he",
    "it", "at", "from", "his", "an", "were", "are", "which", "this", "be", "has", "had",
    "also", "or", "its", "first", "their", "one", "new", "after", "who", "they", "but", "not",
    "been", "two", "her", "she", "other", "time", "all", "more", "when", "there", "can",
    "most", "into", "years", "would", "during", "used", "city", "only", "later", "may", "over",
    "about", "some", "world", "such", "then", "where", "states", "national", "these", "people",
    "between", "team", "him", "both", "school", "three", "under", "known", "than", "many",
    "since", "while", "including", "year", "state", "well", "high", "made", "part", "same",
    "early", "found", "each", "would", "life", "series", "became", "film", "music", "group",
    "area", "war", "season", "system", "number", "government", "called", "public", "known",
    "north", "south", "east", "west", "river", "house", "second", "work", "history", "family",
    "members", "water", "based", "small", "large", "form", "body", "cells", "human", "data",
    "study",
)
_LONG = (
    "population", "administrative", "championship", "professional", "democratic",
    "constituency", "tournament", "infrastructure", "municipality", "philosophical",
    "electromagnetic", "manuscript", "biodiversity", "cardiovascular", "legislature",
    "archaeological", "metropolitan", "hydroelectric", "pharmaceutical", "immunological",
    "transcription", "mitochondrial", "socioeconomic", "meteorological", "orchestration",
    "parliamentary", "inflammatory", "neurological", "predominantly", "reconstruction",
    "approximately", "entrepreneur", "translation", "photographic", "aristocratic",
    "cinematography", "bureaucratic", "genomic", "antibodies", "receptors", "phosphorylation",
    "kilometres", "broadcasting", "discography", "screenplay",
)
_OTHER = (
    "1984", "2007", "(born", "19th-century", "U.S.", "km²", "3.5%", "Inc.", "St.", "e.g.",
    "[1]", "São", "Zürich", "ŠKODA", "—", '"The', "1,200", "A/B", "pre-war", "co-founder",
)
# fmt: on


def scifact_dir() -> Path | None:
    """Where the SciFact files are: ``$LINQ_EVAL_SCIFACT``, else ``../shared/data/scifact``
    beside the repository, else ``shared/data/scifact`` inside it; None when absent."""
    path = scifact_override()
    if path is not None:
        if not (path / "corpus.jsonl").is_file():
            raise ConfigError(f"{SCIFACT_ENV}={path} has no corpus.jsonl")
        return path
    for path in shared_data_candidates("scifact"):
        if (path / "corpus.jsonl").is_file() and (path / "queries.jsonl").is_file():
            return path
    return None


def scifact_texts(n: int, seed: int = 0, data_dir: str | Path | None = None) -> list[str]:
    """``n`` distinct SciFact texts, documents and instructed queries in their file proportions."""
    folder = Path(data_dir) if data_dir is not None else scifact_dir()
    if folder is None:
        raise ConfigError(
            "SciFact not found (looked in $LINQ_EVAL_SCIFACT, ../shared/data/scifact and "
            "shared/data/scifact): use --mix synthetic, or point LINQ_EVAL_SCIFACT at a BEIR "
            "scifact folder"
        )
    with open(folder / "corpus.jsonl", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    docs = [(row.get("title", "") + " " + row["text"]).strip() for row in rows]
    # The prefix a SciFact query receives in a real run of the default profile (through the
    # one prompt builder; no mteb needed).
    profile = get_profile(DEFAULT_PROFILE)
    iset = load_instruction_set(profile.instructions)
    prefix = prompt_for(profile.policy, iset, profile.template, "SciFact", "Retrieval", "query")
    with open(folder / "queries.jsonl", encoding="utf-8") as f:
        queries = [prefix + json.loads(line)["text"] for line in f]
    pool = list(dict.fromkeys(docs + queries))
    if n > len(pool):
        raise ConfigError(f"SciFact has {len(pool)} distinct texts; asked for {n}")
    pick = np.random.default_rng(seed).permutation(len(pool))[:n]
    return [pool[i] for i in pick]


def synthetic_word_counts(n: int, seed: int = 0) -> list[int]:
    """Word counts of ``n`` documents drawn from BIG_CORPORA in proportion to their sizes."""
    rng = np.random.default_rng(seed)
    sizes = np.array([c.documents for c in BIG_CORPORA], dtype=float)
    which = rng.choice(len(BIG_CORPORA), size=n, p=sizes / sizes.sum())
    counts = np.empty(n, dtype=np.int64)
    for k, corpus in enumerate(BIG_CORPORA):
        rows = which == k
        # Lognormal with the published mean: mu = ln(mean) - sigma^2 / 2.
        mu = np.log(corpus.mean_words) - corpus.sigma**2 / 2
        counts[rows] = np.maximum(3, np.rint(rng.lognormal(mu, corpus.sigma, rows.sum())))
    return counts.tolist()


def synthetic_texts(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct documents with the word counts of :func:`synthetic_word_counts`."""
    rng = np.random.default_rng(seed + 1)
    counts = synthetic_word_counts(n, seed)
    kinds = rng.choice(3, size=sum(counts), p=[0.76, 0.19, 0.05])
    pools = (_SHORT, _LONG, _OTHER)
    picks = [rng.integers(0, len(pool), size=len(kinds)) for pool in pools]
    words = [pools[k][picks[k][i]] for i, k in enumerate(kinds.tolist())]
    texts, start, seen = [], 0, set()
    for i, count in enumerate(counts):
        text = " ".join(words[start : start + count])
        start += count
        if text in seen:  # vanishingly rare; keep every text distinct
            text = f"{text} {i}"
        seen.add(text)
        texts.append(text[0].upper() + text[1:] + ".")
    return texts


def length_mix(mix: str, n: int, seed: int = 0, data_dir: str | Path | None = None) -> list[str]:
    """``n`` distinct texts of a named mix (see _MIXES), shuffled; ``both`` is half and half."""
    if mix not in _MIXES:
        raise UnknownNameError("length mix", mix, _MIXES)
    if n < 1:
        raise ConfigError(f"n_texts must be at least 1, got {n}")
    if mix == "scifact":
        return scifact_texts(n, seed, data_dir)
    if mix == "synthetic":
        return synthetic_texts(n, seed)
    half = n // 2
    texts = scifact_texts(half, seed, data_dir) + synthetic_texts(n - half, seed)
    order = np.random.default_rng(seed + 2).permutation(n)
    return [texts[i] for i in order]


__all__ = [
    "BIG_CORPORA",
    "CorpusStats",
    "length_mix",
    "scifact_dir",
    "scifact_texts",
    "synthetic_texts",
    "synthetic_word_counts",
]
