"""The internals of mteb, transformers, torch and sentence-transformers linq-eval uses: each
still there and doing what the wrappers in linq_eval/thirdparty expect, or a failure naming the
package version; and none used anywhere else (``PUBLIC_MODULES`` says what is public)."""

from __future__ import annotations

import ast
import importlib
import json
import re
import subprocess
import types
from pathlib import Path
from typing import Any, TypedDict

import pytest
import torch

from linq_eval.provenance import installed
from linq_eval.thirdparty import mteb_private, torch_private
from linq_eval.thirdparty import sentence_transformers_private as st_private
from linq_eval.thirdparty import transformers_private as tp

ROOT = Path(__file__).parents[1]

PUBLIC_MODULES = {
    # mteb: the top level and the subpackages whose __init__ re-exports their API in __all__.
    "mteb": (
        "mteb",
        "mteb.abstasks",
        "mteb.benchmarks",
        "mteb.cache",
        "mteb.models",
        "mteb.results",
        "mteb.types",
    ),
    # transformers: the top level, which exports every documented class and function, and its
    # logging module (documented as ``transformers.logging``).
    "transformers": ("transformers", "transformers.logging"),
    # torch: modules of PyTorch's documented API (pytorch.org/docs) that linq-eval and its tests
    # use (``torch.distributed.run``: the module torchrun runs).
    "torch": (
        "torch",
        "torch.cuda",
        "torch.distributed",
        "torch.distributed.run",
        "torch.nn",
        "torch.nn.functional",
        "torch.testing",
        "torch.utils.data",
        "torch.version",
    ),
    # sentence-transformers: the top level and the package of its module classes (``models``
    # before version 6, ``sentence_transformer.modules`` since).
    "sentence_transformers": (
        "sentence_transformers",
        "sentence_transformers.models",
        "sentence_transformers.sentence_transformer.modules",
    ),
}
"""What is public in each package: these modules, and the names each exports (its ``__all__``;
a module without one: any attribute that is not a module). Anything else under the package is
internal: a deeper module, a name its module does not export, a name with a leading
underscore, however spelled (an import, an attribute of an imported name, a dotted string)."""

_DOTTED = re.compile(rf"({'|'.join(PUBLIC_MODULES)})(\.[A-Za-z_]\w*)+")


def _dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def _attribute(path: str) -> Any:
    """The object a dotted name stands for: attributes first, else a submodule to import
    (None when there is neither)."""
    parts = path.split(".")
    obj = importlib.import_module(parts[0])
    for depth, part in enumerate(parts[1:], start=2):
        try:
            found = getattr(obj, part, None)
        except Exception:  # noqa: BLE001 - a lazy module that fails to load the name
            found = None
        if found is None:
            try:
                found = importlib.import_module(".".join(parts[:depth]))
            except ImportError:
                return None
        obj = found
    return obj


def why_internal(path: str) -> str | None:
    """Why the dotted name ``path`` (under one of ``PUBLIC_MODULES``' packages) is internal;
    None when it is public."""
    parts = path.split(".")
    if any(part.startswith("_") and not _dunder(part) for part in parts):
        return "a private name"
    public = PUBLIC_MODULES[parts[0]]
    depth = max(i for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in public)
    if depth == len(parts) or _dunder(parts[depth]):
        return None
    module, name = ".".join(parts[:depth]), parts[depth]
    owner, found = _attribute(module), _attribute(f"{module}.{name}")
    if isinstance(found, types.ModuleType):
        return f"module {module}.{name} is not public"
    exported = getattr(owner, "__all__", None)
    if exported is None:
        return None if found is not None else f"{module} has no {name}"
    return None if name in exported else f"{module} does not export {name}"


def internal_uses(source: str) -> list[tuple[int, str, str]]:
    """``(line, dotted name, why)`` for each use of a third-party internal in Python
    ``source``: an import, an attribute chain on an imported name, a dotted string."""
    tree = ast.parse(source)
    bound: dict[str, str] = {}  # a name the source binds -> the dotted name it stands for
    modules: list[tuple[int, str]] = []  # modules imported by name: public ones only
    uses: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                root = alias.name.split(".")[0]
                if root in PUBLIC_MODULES:
                    modules.append((node.lineno, alias.name))
                    bound[alias.asname or root] = alias.name if alias.asname else root
        elif (
            isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PUBLIC_MODULES
        ):
            modules.append((node.lineno, node.module))
            for alias in node.names:
                uses.append((node.lineno, f"{node.module}.{alias.name}"))
                bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Constant) and _DOTTED.fullmatch(str(node.value)):
            uses.append((node.lineno, node.value))
    for node in ast.walk(tree):
        chain, base = [], node
        while isinstance(base, ast.Attribute):
            chain.append(base.attr)
            base = base.value
        if chain and isinstance(base, ast.Name) and base.id in bound:
            uses.append((node.lineno, ".".join([bound[base.id], *reversed(chain)])))
    found = {
        (line, module, f"module {module} is not public")
        for line, module in modules
        if module not in PUBLIC_MODULES[module.split(".")[0]]
    }
    found |= {(line, path, why) for line, path in uses if (why := why_internal(path))}
    return sorted(found)


@pytest.mark.parametrize("module", [mteb_private, tp, torch_private, st_private])
def test_every_private_name_is_there(module):
    assert module.missing_names() == []


def _why(package: str, what: str) -> str:
    return f"{package} {installed(package)}: {what}"


def test_mteb_run_settings_are_merged_per_task_split_and_subset(tmp_path):
    path = tmp_path / "run_settings.jsonl"
    first = {"task": "SciFact", "splits": ["test"], "subsets": ["default"], "batch_size": 8}
    mteb_private.merge_run_settings(path, [first])
    again = {**first, "batch_size": 16}
    mteb_private.merge_run_settings(path, mteb_private.read_run_settings(path) + [again])
    entries = mteb_private.read_run_settings(path)
    assert [e["batch_size"] for e in entries] == [16], _why("mteb", f"merged to {entries}")
    assert json.loads(path.read_text(encoding="utf-8").splitlines()[0])["task"] == "SciFact"


def test_mteb_retrieval_scoring_and_reranking_conversion():
    scores = mteb_private.retrieval_scores(
        {"q": {"a": 0.9, "b": 0.8, "c": 0.1}}, {"q": {"b": 1, "c": 1}}, [1000]
    )
    assert scores.map["MAP@1000"] == pytest.approx((1 / 2 + 2 / 3) / 2, abs=1e-5), _why(
        "mteb", "calculate_retrieval_scores"
    )
    merged = mteb_private.max_over_subqueries(
        {"q_0": {"b": 1}, "q_1": {"b": 1}}, {"q_0": {"a": 0.9, "b": 0.1}, "q_1": {"b": 0.95}}, [1]
    )
    assert merged["max_over_subqueries_map_at_1"] == 1.0, _why("mteb", "max_over_subqueries")
    converted = mteb_private.reranking_candidates(["p1", "p2"], ["n1"], "test", 3)
    assert converted["relevance_scores"] == [1, 1, 0], _why("mteb", "_process_example")
    assert len(set(converted["doc_ids"])) == 3 and converted["query_id"] == "test_query3"


def test_transformers_attention_names(tiny):
    why = _why("transformers", "_supports_attention_backend")
    assert tp.supports_attention_backend(tiny), why
    before = tp.attn_implementation(tiny.config)
    assert before in ("sdpa", "eager"), _why("transformers", f"_attn_implementation {before!r}")
    with tp.attention_switched(tiny.config, "eager"):
        assert tp.attn_implementation(tiny.config) == "eager"
    assert tp.attn_implementation(tiny.config) == before
    assert not tp.supports_attention_backend(torch.nn.Linear(2, 2))  # the fallback: padded


def test_without_the_flash_operator_packing_falls_back(monkeypatch):
    from linq_eval.model import packed_attention

    cuda = torch.device("cuda")
    if torch_private.flash_varlen_available():
        assert "flash" in packed_attention.packed_kernels(cuda, torch.bfloat16)
    monkeypatch.setattr(packed_attention, "flash_varlen_available", lambda: False)
    assert packed_attention.packed_kernels(cuda, torch.bfloat16) == ["padded", "segments"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the flash operator runs on CUDA only")
def test_flash_varlen_matches_attention_per_input():
    q, k, v = (torch.randn(7, 2, 16, device="cuda", dtype=torch.float16) for _ in range(3))
    cu = torch.tensor([0, 3, 7], device="cuda", dtype=torch.int32)
    out = torch_private.flash_varlen(q, k, v, cu, 4, True, None)
    for a, b in ((0, 3), (3, 7)):
        want = torch.nn.functional.scaled_dot_product_attention(
            *(x[a:b].transpose(0, 1) for x in (q, k, v)), is_causal=True
        ).transpose(0, 1)
        assert torch.allclose(out[a:b], want, atol=2e-3), _why("torch", "_flash_attention_forward")


def test_mteb_retrieval_split_has_the_keys_mteb_declares(monkeypatch):
    fields = {"corpus": [], "queries": [], "relevant_docs": {"q": {"d": 1}}, "top_ranked": None}
    split = mteb_private.retrieval_split(**fields)
    assert split == fields, _why("mteb", "RetrievalSplitData")

    class Other(TypedDict):
        corpus: Any

    monkeypatch.setattr(mteb_private, "lookup", lambda module, path: Other)
    with pytest.raises(RuntimeError, match=f"mteb {installed('mteb')} holds"):
        mteb_private.retrieval_split(**fields)
    monkeypatch.setattr(mteb_private, "lookup", lambda module, path: None)
    assert mteb_private.retrieval_split(**fields) == fields  # the fallback: a plain dict


def test_mteb_cosine_scoring():
    assert mteb_private.cosine_scoring() == "cosine", _why("mteb", "ScoringFunction.COSINE")


def test_transformers_sentencepiece_bpe():
    from linq_eval.model.random_models import mistral_tokenizer_file

    vocab, merges, special = tp.sentencepiece_bpe(str(mistral_tokenizer_file()))
    why = _why("transformers", "convert_slow_tokenizer")
    assert len(vocab) == 32000 and vocab["<s>"] == 1 and vocab["</s>"] == 2, why
    assert len(merges) > 10000 and {str(t) for t in special} == {"<s>", "</s>"}, why


def test_sentence_transformers_module_takes_the_model_in_memory(tiny, tok, tmp_path):
    tiny.config.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    module = st_private.transformer_around(tiny, str(tmp_path), 32)
    held = [getattr(module, name, None) for name in ("model", "auto_model")]
    assert any(m is tiny for m in held), _why("sentence-transformers", "Transformer._load_model")
    assert module.max_seq_length == 32


@pytest.mark.parametrize(
    "source",
    [
        "from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData",
        "import transformers.convert_slow_tokenizer",
        "from transformers.convert_slow_tokenizer import generate_merges",
        "from mteb.models import ScoringFunction",
        "import mteb\nmteb.abstasks.retrieval.AbsTaskRetrieval",
        "import torch as t\nt.ops.aten._flash_attention_forward",
        "from sentence_transformers import SentenceTransformer as S\nS._load_model",
        "patch('mteb.results.task_result._read_run_settings_from_file')",
    ],
)
def test_the_guard_catches_a_planted_internal(source):
    assert internal_uses(source), source


def test_the_guard_passes_public_names():
    source = (
        "import mteb\nimport torch\nimport torch.nn.functional as F\n"
        "from mteb.abstasks import AbsTask\nfrom transformers import AutoModel, logging\n"
        "from sentence_transformers import SentenceTransformer\n"
        "mteb.get_tasks(); AbsTask.load_data; F.normalize; torch.cuda.is_available()\n"
        "torch.version.cuda; torch.__version__; AutoModel.from_pretrained; 'torch.float16'"
    )
    assert internal_uses(source) == []


def test_internals_are_used_only_through_the_wrappers():
    """No module of linq_eval outside linq_eval/thirdparty uses an internal of mteb,
    transformers, torch or sentence-transformers (``PUBLIC_MODULES``)."""
    found = []
    for path in sorted((ROOT / "linq_eval").rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        if name.startswith("linq_eval/thirdparty/"):
            continue
        found += [
            f"{name}:{line}: {dotted}: {why}"
            for line, dotted, why in internal_uses(path.read_text(encoding="utf-8"))
        ]
    assert found == [], "\n".join(found)


def test_private_names_live_only_in_the_wrappers():
    """No module or test outside linq_eval/thirdparty reaches for a private name of mteb,
    transformers, torch or sentence-transformers."""
    pattern = (
        r"(mteb|torch|transformers|sentence_transformers)[A-Za-z0-9_.]*\._[a-zA-Z]|"
        r"\.(_attn_implementation|_supports_attention_backend|_flash_attention_forward|"
        r"_process_example|_calculate_descriptive_statistics_from_split|_compute_metrics|"
        r"_load_model)\b|"
        r"import _[a-z]|\"_supports_attention|\"_load_model"
    )
    found = subprocess.run(
        ["grep", "-rnE", pattern, "linq_eval", "tests", "--include=*.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()
    wrappers = ("linq_eval/thirdparty/", "tests/test_thirdparty.py")
    outside = [line for line in found if not line.startswith(wrappers)]
    assert outside == [], "\n".join(outside)
