"""Instruction policies: which inputs of each task type carry the instruction, and which
task types are L2-normalised. One named object per convention instead of scattered ifs."""

from __future__ import annotations

from dataclasses import dataclass

from linq_eval.errors import UnknownNameError

_NON_RETRIEVAL_TYPES = frozenset(
    {
        "Classification",
        "Clustering",
        "PairClassification",
        "Reranking",
        "STS",
        "Summarization",
        "BitextMining",
        "MultilabelClassification",
    }
)


@dataclass(frozen=True)
class Policy:
    """Where instructions go and when embeddings are normalised."""

    name: str
    """Registry key, recorded in every result."""
    description: str
    """One line for --help and the run record."""
    instruct: bool = True
    """False: no input ever gets an instruction (encoder models such as all-MiniLM)."""
    instruct_documents_for: frozenset[str] = frozenset()
    """Task types whose ``document`` inputs are instructed too."""
    unnormalised_for: frozenset[str] = frozenset()
    """Task types whose embeddings are not L2-normalised."""
    normalised: bool = True
    """False: no embedding is L2-normalised, whatever its task type."""

    def applies(self, task_type: str, prompt_type: str | None) -> bool:
        """Whether an input of this task type and prompt type gets the instruction prefix."""
        documents = task_type in self.instruct_documents_for
        return self.instruct and (prompt_type != "document" or documents)

    def normalise(self, task_type: str | None) -> bool:
        """Whether embeddings of this task type are L2-normalised."""
        return self.normalised and task_type not in self.unnormalised_for

    @property
    def unnormalised_types(self) -> tuple[str, ...]:
        """The task types left unnormalised, as a run records them (``*``: every type)."""
        return ("*",) if not self.normalised else tuple(sorted(self.unnormalised_for))


POLICIES: dict[str, Policy] = {
    "e5": Policy(
        name="e5",
        description=(
            "e5 evaluation scripts (mteb 1.0.2): retrieval queries and every input of the other "
            "task types (reranking candidates included) are instructed; Classification is not "
            "L2-normalised"
        ),
        instruct_documents_for=_NON_RETRIEVAL_TYPES,
        unnormalised_for=frozenset({"Classification", "MultilabelClassification"}),
    ),
    "mteb": Policy(
        name="mteb",
        description=(
            "mteb v2's wrapper for this model: every input except documents is instructed; "
            "everything is L2-normalised"
        ),
    ),
    "none": Policy(
        name="none",
        description="no instructions at all; everything is L2-normalised (encoder models)",
        instruct=False,
    ),
    "unnormalised": Policy(
        name="unnormalised",
        description="no instructions and no L2 normalisation: raw embeddings (an encoder "
        "evaluated without a Normalize module)",
        instruct=False,
        normalised=False,
    ),
}


def get_policy(name: str | Policy) -> Policy:
    """Look up a policy by name."""
    if isinstance(name, Policy):
        return name
    try:
        return POLICIES[name]
    except KeyError:
        raise UnknownNameError("policy", name, POLICIES) from None


__all__ = ["POLICIES", "Policy", "get_policy"]
