"""Instruction sets: coverage, verbatim strings, validation errors, the CLI, agreement with mteb.

Run: HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 python -m pytest tests/test_instructions.py -q
Needs mteb (its task registry and metadata; no data sets or model weights are loaded).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from conftest import CQADUPSTACK_SUBTASKS
from typer.testing import CliRunner

from linq_eval.benchmarks import task_names
from linq_eval.cli import app
from linq_eval.errors import ConfigError, UnknownNameError
from linq_eval.prompts.builder import instruction_set_hash, task_prompts, task_types
from linq_eval.prompts.instruction_sets import (
    DEFAULT_INSTRUCTIONS_DIR,
    InstructionSet,
    available_instruction_sets,
    load_instruction_set,
    parse_instruction_file,
    validate_against_benchmark,
    validate_instruction_file,
)

BENCHMARK = "MTEB(eng, v1)"
BENCHMARK_V2 = "MTEB(eng, v2)"
TEMPLATE = "Instruct: {instruction}\nQuery: "


@pytest.fixture(scope="module")
def benchmark_tasks() -> list[str]:
    return task_names(BENCHMARK)


@pytest.fixture(scope="module")
def v2_additions(benchmark_tasks: list[str]) -> list[str]:
    """The MTEB(eng, v2) tasks that MTEB(eng, v1) (with its subforums) does not have."""
    v1 = set(task_names(BENCHMARK, expand_aggregates=True))
    return [t for t in task_names(BENCHMARK_V2) if t not in v1]


@pytest.fixture(scope="module")
def e5() -> InstructionSet:
    return load_instruction_set("e5")


@pytest.fixture(scope="module")
def mteb_v2() -> InstructionSet:
    return load_instruction_set("mteb-v2")


# --- the shipped sets ---


def test_benchmark_has_56_tasks(benchmark_tasks: list[str]) -> None:
    assert len(benchmark_tasks) == 56
    assert "CQADupstackRetrieval" in benchmark_tasks
    expanded = task_names(BENCHMARK, expand_aggregates=True)
    assert sorted(set(expanded) - set(benchmark_tasks)) == sorted(CQADUPSTACK_SUBTASKS)


def test_named_sets_are_available() -> None:
    assert {"e5", "mteb-v2"} <= set(available_instruction_sets())


@pytest.mark.parametrize("name", ["e5", "mteb-v2"])
def test_set_covers_benchmark_and_subforums_exactly(
    name: str, benchmark_tasks: list[str], v2_additions: list[str]
) -> None:
    iset = load_instruction_set(name)
    assert iset.name == name
    assert iset.version == "1.0.0"
    assert iset.template == TEMPLATE
    assert iset.source
    v1_entries = set(benchmark_tasks) | set(CQADUPSTACK_SUBTASKS)
    assert len(v1_entries) == 68
    assert len(v2_additions) == 14
    # The 68 MTEB(eng, v1) entries, and beside them exactly the 14 tasks MTEB(eng, v2) adds.
    assert set(iset.instructions) == v1_entries | set(v2_additions)
    covered = validate_against_benchmark(iset, BENCHMARK)
    assert set(covered) == v1_entries
    covered_v2 = validate_against_benchmark(iset, BENCHMARK_V2)
    assert len(covered_v2) == 41 and set(covered_v2) <= set(iset.instructions)


def test_e5_strings_are_verbatim(
    e5: InstructionSet, e5_reference: dict[str, dict[str, str]]
) -> None:
    v1_entries = {task: e5.instructions[task] for task in e5.instructions if task in e5_reference}
    assert v1_entries == {task: entry["instruction"] for task, entry in e5_reference.items()}
    # Every other entry names the v1 task whose verbatim e5 instruction it carries.
    for task in set(e5.instructions) - set(e5_reference):
        origin = e5.origins[task]
        source = origin.get("parent") or origin["borrowed_from"]
        assert e5.get(task) == e5_reference[source]["instruction"], task


def test_mteb_v2_differs_from_e5_only_where_reference_says(
    mteb_v2: InstructionSet, e5_reference: dict[str, dict[str, str]]
) -> None:
    expected = {
        task: entry.get("mteb_v2_prompt_differs", entry["instruction"])
        for task, entry in e5_reference.items()
    }
    assert {t: mteb_v2.instructions[t] for t in e5_reference} == expected
    differing = {t for t, e in e5_reference.items() if "mteb_v2_prompt_differs" in e}
    assert differing == {"SummEval", "CQADupstackRetrieval", *CQADUPSTACK_SUBTASKS}


def test_only_sts_ends_with_period(e5: InstructionSet, benchmark_tasks: list[str]) -> None:
    types = task_types(benchmark_tasks)
    with_period = {t for t in benchmark_tasks if e5.get(t).endswith(".")}
    assert with_period == {t for t in benchmark_tasks if types[t] == "STS"}
    assert len(with_period) == 10
    assert not e5.get("SummEval").endswith(".")


def _mteb_linq_encoder() -> object:
    """mteb's own wrapper for Linq-Embed-Mistral, configured as mteb does, without weights."""
    import mteb
    from mteb.models.instruct_wrapper import InstructSentenceTransformerModel

    meta = mteb.get_model_meta("Linq-AI-Research/Linq-Embed-Mistral")
    assert meta.loader is InstructSentenceTransformerModel
    encoder = object.__new__(InstructSentenceTransformerModel)  # skip loading 14 GB of weights
    encoder.instruction_template = meta.loader_kwargs["instruction_template"]
    encoder.prompts_dict = meta.loader_kwargs.get("prompts_dict")
    encoder.apply_instruction_to_passages = meta.loader_kwargs["apply_instruction_to_passages"]
    return encoder


def test_mteb_v2_set_equals_what_installed_mteb_produces(
    mteb_v2: InstructionSet, benchmark_tasks: list[str], v2_additions: list[str]
) -> None:
    import mteb
    from mteb.types import PromptType

    encoder = _mteb_linq_encoder()
    produced: dict[str, str] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in [*benchmark_tasks, *v2_additions]:
            task = mteb.get_task(name)
            # An aggregate (CQADupstackRetrieval) encodes nothing itself: its subtasks do.
            for sub in task.metadata.tasks if task.is_aggregate else [task]:
                prefix = encoder.get_task_instruction(sub.metadata, PromptType.query)
                produced[sub.metadata.name] = prefix
                if task.is_aggregate:
                    produced.setdefault(name, prefix)
                    assert produced[name] == prefix, "subforums of one aggregate disagree"
    assert produced == {t: mteb_v2.prefix(t) for t in mteb_v2.instructions}


# --- look-ups and hashing ---


def test_unknown_task_names_closest(e5: InstructionSet) -> None:
    with pytest.raises(UnknownNameError) as info:
        e5.get("SciFacts")
    assert info.value.suggestions[0] == "SciFact"
    assert "Did you mean: 'SciFact'" in str(info.value)


def test_require_lists_every_missing_task(e5: InstructionSet) -> None:
    with pytest.raises(UnknownNameError) as info:
        e5.require(["SciFact", "STS1", "NFCorpuss", "SciFacts"])
    message = str(info.value)
    assert "3 task(s)" in message
    for missing, close in [("STS1", "STS17"), ("NFCorpuss", "NFCorpus"), ("SciFacts", "SciFact")]:
        assert repr(missing) in message and repr(close) in message
    e5.require(["SciFact", "STS12"])  # no error


def test_prefix_and_prompt_hash(e5: InstructionSet) -> None:
    assert e5.prefix("STS12") == "Instruct: Retrieve semantically similar text.\nQuery: "
    full = instruction_set_hash(e5)
    assert len(full) == 16 and int(full, 16) >= 0
    assert instruction_set_hash(e5) == full
    pair = instruction_set_hash(e5, ["SciFact", "STS12"])
    assert pair == instruction_set_hash(e5, ["STS12", "SciFact"])
    assert instruction_set_hash(e5, ["SciFact"]) != full

    changed = dict(e5.instructions, STS12="Retrieve semantically similar text")
    other = dataclasses.replace(e5, instructions=changed)
    assert instruction_set_hash(other) != full
    assert instruction_set_hash(other, ["SciFact"]) == instruction_set_hash(e5, ["SciFact"])
    renamed = dataclasses.replace(e5, name="copy", version="9.9.9")
    assert instruction_set_hash(renamed) == full  # the hash covers the strings only
    retemplated = dataclasses.replace(e5, template="Instruct: {instruction}\nQuery:")
    assert instruction_set_hash(retemplated) != full
    assert instruction_set_hash(e5, template=retemplated.template) == instruction_set_hash(
        retemplated
    )


def test_instruction_set_is_read_only(e5: InstructionSet) -> None:
    with pytest.raises(TypeError):
        e5.instructions["SciFact"] = "x"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        e5.version = "2"  # type: ignore[misc]


def test_unknown_set_and_benchmark() -> None:
    with pytest.raises(UnknownNameError) as info:
        load_instruction_set("e6")
    assert "e5" in info.value.suggestions
    with pytest.raises(UnknownNameError) as info:
        task_names("MTEB(eng,v1)")
    assert "MTEB(eng, v1)" in info.value.suggestions
    with pytest.raises(UnknownNameError) as info:
        task_names(tasks=["SciFact", "NFCorpuss"])
    assert "NFCorpus" in info.value.suggestions


def test_load_by_path_and_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    custom = tmp_path / "custom.yaml"
    custom.write_text(_yaml_file(tasks={"SciFact": "Find it"}), encoding="utf-8")
    loaded = load_instruction_set(custom)
    assert loaded.name == "custom" and loaded.get("SciFact") == "Find it"
    assert load_instruction_set(str(custom)) is loaded  # cached

    custom.write_text(_yaml_file(tasks={"SciFact": "Find it again"}), encoding="utf-8")
    assert load_instruction_set(custom).get("SciFact") == "Find it again"  # edit invalidates

    monkeypatch.setenv("LINQ_EVAL_INSTRUCTIONS_DIR", str(tmp_path))
    assert available_instruction_sets() == ["custom"]
    assert load_instruction_set("custom").get("SciFact") == "Find it again"
    monkeypatch.delenv("LINQ_EVAL_INSTRUCTIONS_DIR")
    assert load_instruction_set("e5").path == (DEFAULT_INSTRUCTIONS_DIR / "e5.yaml").resolve()


# --- validation of malformed files ---


def _yaml_file(name: str = "custom", tasks: dict[str, str] | None = None) -> str:
    lines = [
        f"name: {name}",
        'version: "1.0.0"',
        'source: "tests"',
        'template: "Instruct: {instruction}\\nQuery: "',
        "tasks:",
    ]
    lines += [f"  {t}: {json.dumps(s)}" for t, s in (tasks or {}).items()]
    return "\n".join(lines) + "\n"


def test_malformed_file_lists_every_problem_with_lines(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "\n".join(
            [
                "name: bad",  # 1
                "version: 1.0",  # 2: not a string
                'template: "Instruct: {instr}\\nQuery: "',  # 3: no {instruction}
                "taks: {}",  # 4: unknown key (did you mean tasks)
                "tasks:",  # 5
                '  SciFact: "Given a scientific claim, retrieve documents"',  # 6: fine
                '  NFCorpuss: "Given a question, retrieve documents"',  # 7: unknown task
                "  STS12: 12",  # 8: not a string
                '  STS13: ""',  # 9: empty
                '  SciFact: "again"',  # 10: duplicate
                '  STS14: "trailing space "',  # 11: whitespace
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_instruction_set(bad)
    message = str(info.value)
    expected = [
        (2, "'version' must be a string"),
        (3, "template must contain '{instruction}'"),
        (4, "unknown key 'taks'; did you mean 'tasks'?"),
        (7, "task 'NFCorpuss' is not an mteb task; did you mean: 'NFCorpus'"),
        (8, "instruction of 'STS12' must be a string"),
        (9, "instruction of 'STS13' is empty"),
        (10, "duplicate task 'SciFact' (first on line 6)"),
        (11, "instruction of 'STS14' has leading or trailing whitespace"),
        (1, "missing required key 'source'"),
    ]
    for line, text in expected:
        assert f"{bad}:{line}: {text}" in message, (line, text, message)
    assert f"has {len(expected)} problem(s)" in message


def test_invalid_yaml_and_wrong_shape(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text('name: x\ntasks:\n  SciFact: "unclosed\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken\.yaml:\d+: not valid YAML"):
        load_instruction_set(broken)
    listed = tmp_path / "listed.yaml"
    listed.write_text("- SciFact\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_instruction_set(listed)
    dup = tmp_path / "dup.yaml"
    dup.write_text(_yaml_file().replace("tasks:", 'tasks: {}\nversion: "2"'), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_instruction_set(dup)
    assert "duplicate key 'version' (first on line 2)" in str(info.value)
    assert "'tasks' is empty" in str(info.value)


def test_named_set_must_match_file_stem(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(_yaml_file(name="other", tasks={"SciFact": "x"}), encoding="utf-8")
    assert parse_instruction_file(path).name == "other"  # any name for a path
    with pytest.raises(ConfigError, match="must equal the file stem 'mine'"):
        parse_instruction_file(path, expected_name="mine")


def test_coverage_check_names_missing_tasks(tmp_path: Path) -> None:
    path = tmp_path / "partial.yaml"
    path.write_text(_yaml_file(tasks={"SciFact": "x"}), encoding="utf-8")
    with pytest.raises(UnknownNameError) as info:
        validate_instruction_file(path, BENCHMARK)
    assert "has no instruction for 67 task(s)" in str(info.value)
    assert "CQADupstackGisRetrieval" in str(info.value)
    assert validate_instruction_file(path, None).name == "custom"


# --- prompts per policy and the CLI ---


def test_task_prompts_follow_policy(e5: InstructionSet) -> None:
    names = ["SciFact", "SciDocsRR", "STS12", "Banking77Classification", "CQADupstackRetrieval"]
    e5_prompts = task_prompts(names, "e5", e5)
    mteb_prompts = task_prompts(names, "mteb", e5)
    none_prompts = task_prompts(["SciFact", "SciFact-PL"], "none", e5)  # none needs no set entry
    for name in names:
        assert e5_prompts[name]["query"] == mteb_prompts[name]["query"] == e5.prefix(name)
    assert e5_prompts["SciFact"]["document"] == mteb_prompts["SciFact"]["document"] == ""
    assert e5_prompts["CQADupstackRetrieval"]["document"] == ""
    assert e5_prompts["SciDocsRR"]["document"] == e5.prefix("SciDocsRR")
    assert mteb_prompts["SciDocsRR"]["document"] == ""
    # mteb v2 encodes both STS sentences with prompt type None: instructed under both policies.
    assert e5_prompts["STS12"]["document"] == mteb_prompts["STS12"]["document"] != ""
    assert all(p == {"query": "", "document": ""} for p in none_prompts.values())
    custom = task_prompts(["STS12"], "e5", e5, template="<{instruction}>")
    assert custom["STS12"]["query"] == "<Retrieve semantically similar text.>"


def test_task_prompts_missing_instruction_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "small.yaml"
    path.write_text(_yaml_file(tasks={"SciFact": "x"}), encoding="utf-8")
    with pytest.raises(UnknownNameError, match="no instruction for 2 task"):
        task_prompts(["SciFact", "STS12", "NFCorpus"], "e5", load_instruction_set(path))


def _cli_json(*args: str) -> dict[str, dict[str, str]]:
    result = CliRunner().invoke(app, ["instructions", "--format", "json", *args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return json.loads(result.stdout)


def test_cli_json_default_benchmark(benchmark_tasks: list[str], e5: InstructionSet) -> None:
    out = _cli_json()
    assert list(out) == benchmark_tasks
    types = task_types(benchmark_tasks)
    for task, prompts in out.items():
        assert set(prompts) == {"query", "document", "instruction_from", "prompt_hash"}
        assert prompts["instruction_from"] == task
        assert prompts["query"] == f"Instruct: {e5.get(task)}\nQuery: "
        if types[task] == "Retrieval":
            assert prompts["document"] == ""
        else:
            assert prompts["document"] == prompts["query"]


def test_cli_json_policies_differ_on_reranking_documents(benchmark_tasks: list[str]) -> None:
    e5_out = _cli_json("--policy", "e5")
    mteb_out = _cli_json("--policy", "mteb")
    types = task_types(benchmark_tasks)
    reranking = {t for t in benchmark_tasks if types[t] == "Reranking"}
    sts = {t for t in benchmark_tasks if types[t] == "STS"}
    assert len(reranking) == 4 and len(sts) == 10
    differing = {t for t in benchmark_tasks if e5_out[t] != mteb_out[t]}
    assert differing == reranking
    for task in reranking:
        assert e5_out[task]["document"].startswith("Instruct: ")
        assert mteb_out[task]["document"] == ""
    for task in sts:  # STS has no "documents" in mteb v2: both sentences are instructed
        assert e5_out[task]["document"] == mteb_out[task]["document"] != ""


def test_cli_task_selection_forms() -> None:
    repeated = _cli_json("--tasks", "SciFact", "--tasks", "STS12")
    spaced = _cli_json("--tasks", "SciFact", "STS12")
    positional = _cli_json("SciFact", "STS12")
    assert list(repeated) == list(spaced) == list(positional) == ["SciFact", "STS12"]
    v2 = _cli_json("--instructions", "mteb-v2", "--policy", "mteb", "SummEval")
    assert v2["SummEval"]["query"].endswith("similar summaries.\nQuery: ")


def test_cli_table_and_errors() -> None:
    runner = CliRunner()
    table = runner.invoke(app, ["instructions", "--tasks", "SciFact", "SciDocsRR"])
    assert table.exit_code == 0, table.output
    assert "prompt_hash" in table.stdout and "SciDocsRR" in table.stdout
    # tasks taken from a named benchmark
    args = ["instructions", "--benchmark", "MTEB(eng, v1)", "--tasks", "STS17"]
    chosen = runner.invoke(app, args)
    assert chosen.exit_code == 0 and "STS17" in chosen.stdout, chosen.output
    for args in (
        ["instructions", "--tasks", "SciFacts"],
        ["instructions", "--benchmark", "MTEB(eng,v1)"],
        ["instructions", "--policy", "e6"],
        ["instructions", "--format", "yaml"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code != 0
        assert isinstance(result.exception, (UnknownNameError, ConfigError)), args


def test_cli_validate_instructions(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["validate-instructions"])
    assert ok.exit_code == 0, ok.output
    assert "ok   e5 1.0.0: 82 tasks" in ok.stdout and "ok   mteb-v2" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(_yaml_file(tasks={"SciFacts": "x"}), encoding="utf-8")
    result = runner.invoke(app, ["validate-instructions", str(bad), "--no-coverage"])
    assert isinstance(result.exception, ConfigError)
    assert "did you mean: 'SciFact'" in str(result.exception)


def test_import_does_not_import_mteb() -> None:
    repo = Path(__file__).resolve().parents[1]

    def run(code: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo
        )
        return done.stdout.strip()

    assert (
        run("import sys, linq_eval.prompts.instruction_sets; print('mteb' in sys.modules)")
        == "False"
    )
    # As on a machine without mteb: a named set still loads (registry check skipped).
    blocked = (
        "import sys; sys.modules['mteb'] = None; import linq_eval.prompts.instruction_sets as m; "
        "print(m.load_instruction_set('e5').get('SciFact'))"
    )
    assert run(blocked) == load_instruction_set("e5").get("SciFact")
