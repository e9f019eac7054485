"""Which inputs carry the instruction, per task type and policy, as the encoder really sends
them."""

from __future__ import annotations

from pathlib import Path

import mteb
import numpy as np
import pytest
import yaml

from linq_eval.errors import UnknownNameError
from linq_eval.model.encoder import DecoderEncoder
from linq_eval.profiles import get_profile
from linq_eval.prompts.instruction_sets import load_instruction_set

E5 = load_instruction_set("e5")
E5_FILE = yaml.safe_load((Path(__file__).parents[1] / "task_instructions" / "e5.yaml").read_text())
"""The instruction file itself, read without the project's loader: what prompts must say."""


def e5_prefix(task: str) -> str:
    return E5_FILE["template"].format(instruction=E5_FILE["tasks"][task])


@pytest.fixture(scope="module")
def parts(tiny, tok):
    return tiny, tok


def encoder(parts, policy: str) -> DecoderEncoder:
    model, tok = parts
    profile = get_profile("linq-embed-mistral").with_overrides(policy=policy)
    return DecoderEncoder(model, tok, profile, device="cpu", progress=False, instruction_set=E5)


def sent_texts(enc, monkeypatch, task: str, prompt_type: str | None, texts=("one", "two")):
    """Encode through the mteb protocol; return the exact strings tokenized and the output."""
    seen: list[str] = []
    real = enc.tokenize

    def spy(full_texts):
        seen.extend(full_texts)
        return real(full_texts)

    monkeypatch.setattr(enc, "tokenize", spy)
    meta = mteb.get_task(task).metadata
    out = enc.encode(
        [{"text": list(texts)}],
        task_metadata=meta,
        hf_split="test",
        hf_subset="default",
        prompt_type=prompt_type,
    )
    return seen, out


CASES = [
    # task, mteb prompt type, instructed under e5, instructed under mteb
    ("SciFact", "query", True, True),
    ("SciFact", "document", False, False),
    ("SciDocsRR", "query", True, True),
    ("SciDocsRR", "document", True, False),  # reranking candidates: e5 instructs them
    ("STSBenchmark", None, True, True),
    ("Banking77Classification", None, True, True),
    ("ArxivClusteringS2S", None, True, True),
    ("SprintDuplicateQuestions", None, True, True),
    ("SummEval", None, True, True),
]


@pytest.mark.parametrize("task,prompt_type,e5_instructs,mteb_instructs", CASES)
@pytest.mark.parametrize("policy", ["e5", "mteb"])
def test_instruction_placement(
    parts, monkeypatch, task, prompt_type, e5_instructs, mteb_instructs, policy
):
    enc = encoder(parts, policy)
    seen, _ = sent_texts(enc, monkeypatch, task, prompt_type)
    instructed = e5_instructs if policy == "e5" else mteb_instructs
    expected_prefix = e5_prefix(task) if instructed else ""
    assert seen == [expected_prefix + "one", expected_prefix + "two"]


def test_classification_is_unnormalised_under_e5_only(parts, monkeypatch):
    _, out_e5 = sent_texts(encoder(parts, "e5"), monkeypatch, "Banking77Classification", None)
    _, out_mteb = sent_texts(encoder(parts, "mteb"), monkeypatch, "Banking77Classification", None)
    assert not np.allclose(np.linalg.norm(out_e5, axis=1), 1.0)
    np.testing.assert_allclose(np.linalg.norm(out_mteb, axis=1), 1.0, atol=1e-5)
    _, out_sts = sent_texts(encoder(parts, "e5"), monkeypatch, "STSBenchmark", None)
    np.testing.assert_allclose(np.linalg.norm(out_sts, axis=1), 1.0, atol=1e-5)


def test_task_without_instruction_is_an_error(parts):
    """AppsRetrieval has no instruction in e5 and derives from no task that has one."""
    enc = encoder(parts, "e5")
    meta = mteb.get_task("AppsRetrieval").metadata
    with pytest.raises(UnknownNameError, match="AppsRetrieval"):
        enc.encode(
            [{"text": ["q"]}],
            task_metadata=meta,
            hf_split="test",
            hf_subset="default",
            prompt_type="query",
        )


def test_a_derived_task_takes_its_parents_instruction(parts, monkeypatch):
    """NanoSciFactRetrieval is adapted from SciFact (mteb's metadata): its queries get
    SciFact's e5 instruction, as mteb's own prompt for the Nano task is SciFact's."""
    texts, _ = sent_texts(encoder(parts, "e5"), monkeypatch, "NanoSciFactRetrieval", "query")
    scifact, _ = sent_texts(encoder(parts, "e5"), monkeypatch, "SciFact", "query")
    assert texts == scifact and texts[0].startswith("Instruct: Given a scientific claim")


def test_encoder_prompts_are_the_instruction_file_s_texts(parts):
    """Every MTEB(eng, v1) task's prompts are e5.yaml's strings in its template: every input
    instructed but retrieval corpora (e5), and reranking candidates too (mteb)."""
    tasks = {t.metadata.name: t.metadata.type for t in mteb.get_benchmark("MTEB(eng, v1)").tasks}
    uninstructed_documents = {"e5": {"Retrieval"}, "mteb": {"Retrieval", "Reranking"}}
    for policy, plain in uninstructed_documents.items():
        prompts = encoder(parts, policy).task_prompts(list(tasks))
        assert list(prompts) == list(tasks)
        for name, task_type in tasks.items():
            document = "" if task_type in plain else e5_prefix(name)
            assert prompts[name] == {"query": e5_prefix(name), "document": document}, name


def test_prompt_hash_tracks_policy_and_tasks(parts):
    e5, mt = encoder(parts, "e5"), encoder(parts, "mteb")
    assert e5.prompt_hash(["SciFact", "STS12"]) == e5.prompt_hash(["STS12", "SciFact"])
    assert e5.prompt_hash(["SciFact"]) != e5.prompt_hash(["SciFact", "STS12"])
    assert e5.prompt_hash(["SciDocsRR"]) != mt.prompt_hash(["SciDocsRR"])
