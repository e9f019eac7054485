"""One record of what decides a score: the lists derived from it, the prompt hash a run records
(equal to what ``linq-eval instructions`` prints), and each task's own settings in the record."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from cli_helpers import run_cli

from linq_eval import run_record
from linq_eval.atomic import FileLock
from linq_eval.benchmarks import DEFAULT_BENCHMARK, select_tasks
from linq_eval.errors import ConfigError
from linq_eval.provenance import mteb_version
from linq_eval.results import compare
from linq_eval.results.reading import LEGACY_RUN_RECORD, ResultSet, read_run_record
from linq_eval.run import cache
from linq_eval.run.result_store import update_run_record
from linq_eval.run.runner import task_prompt_hash

RAW_VECTOR_SETTINGS = (
    "model",
    "revision",
    "model_source",
    "dtype",
    "max_length",
    "pooling",
    "special_tokens",
    "eos",
    "bos",
    "padding_side",
)
"""The settings both lists below hold: each decides a score and a cached embedding."""
ISSUE_LIST = (
    *RAW_VECTOR_SETTINGS,
    "unnormalised_task_types",
    "policy",
    "template",
    "instructions",
    "instructions_version",
    "prompt_hash",
    "embedding_precision",
    "mteb_version",
)
"""Every setting the project says decides a score."""


CACHE_IDENTITY = (*RAW_VECTOR_SETTINGS, "attn_implementation")
"""The settings that decide a raw (cached) embedding; the cache's folders keep their names."""
ALL_SETTINGS = {
    k: f"v-{k}" for k in (*ISSUE_LIST, "data_hash", "attn_implementation", "device", "profile")
}


def result_set(settings: dict) -> ResultSet:
    record = {"settings": settings, "tasks": {"T": {"settings": settings}}}
    return ResultSet("m", "r", Path("m/r"), "run", {}, run_record=record)


def test_every_list_of_settings_is_derived_from_the_one_type():
    assert set(run_record.SCORE_KEYS) == {*ISSUE_LIST, "data_hash"}
    assert set(run_record.IDENTITY_KEYS) == set(CACHE_IDENTITY)
    assert run_record.TASK_KEYS == ("prompt_hash", "data_hash")
    assert set(run_record.RUN_SCORE_KEYS) == set(ISSUE_LIST) - {"prompt_hash"}


@pytest.mark.parametrize("key", [*ISSUE_LIST, "data_hash"])
def test_compare_reports_drift_in_every_score_setting(key):
    changed = {**ALL_SETTINGS, key: "other"}
    drift, notes = compare.check_drift(result_set(changed), result_set(ALL_SETTINGS), ["T"])
    assert [d.key for d in drift] == [key] and not notes


@pytest.mark.parametrize("key", ["attn_implementation", "device", "profile"])
def test_compare_ignores_settings_that_decide_no_score(key):
    changed = {**ALL_SETTINGS, key: "other"}
    assert compare.check_drift(result_set(changed), result_set(ALL_SETTINGS), ["T"]) == ([], [])


def test_the_cache_identity_changes_with_exactly_the_raw_vector_settings():
    identity = cache.cache_identity(ALL_SETTINGS, "cpu")
    assert set(identity) == {*CACHE_IDENTITY, "device_type", "format"}
    for key in ALL_SETTINGS:
        other = cache.cache_identity({**ALL_SETTINGS, key: "other"}, "cpu")
        assert (other != identity) == (key in CACHE_IDENTITY), key
    assert cache.cache_identity(ALL_SETTINGS, "cuda") != identity
    assert "policy" not in identity and "embedding_precision" not in identity


def test_the_encoder_reports_every_score_setting_a_profile_fixes(tiny_encoder):
    """The encoder builds the one type field by field: a field renamed or missing on either
    side is a TypeError, and every field but the per-task prompt hash has a value."""
    settings = tiny_encoder.score_settings()
    values = dataclasses.asdict(settings)
    assert [k for k, v in values.items() if v is None] == ["prompt_hash", "data_hash"]
    assert settings.unnormalised_task_types == ("Classification", "MultilabelClassification")
    assert settings.mteb_version == mteb_version()
    assert tiny_encoder.score_settings("abc").prompt_hash == "abc"
    with pytest.raises(TypeError):
        run_record.ScoreSettings(**{k: v for k, v in values.items() if k != "pooling"})
    record = tiny_encoder.settings()  # what a run records: the run's share, then speed details
    assert list(record)[: len(run_record.RUN_SCORE_KEYS)] == list(run_record.RUN_SCORE_KEYS)
    assert "prompt_hash" not in record and "data_hash" not in record
    assert record["device"] == "cpu"
    assert set(record) - set(run_record.RUN_SCORE_KEYS) == {
        "profile",
        "instructions_file",
        "device",
        "token_budget",
        "speed",
    }


def test_instructions_prints_the_prompt_hash_a_run_records(tiny_encoder, monkeypatch, capsys):
    code, out, err = run_cli(monkeypatch, capsys, "instructions", "--format", "json")
    assert code == 0, err
    printed = json.loads(out)
    tasks = select_tasks(DEFAULT_BENCHMARK)
    assert list(printed) == [t.name for t in tasks] and len(tasks) == 56
    for task in tasks:
        name = task.name
        assert printed[name]["prompt_hash"] == task_prompt_hash(tiny_encoder, task), name
        prompts = tiny_encoder.task_prompts([name])[name]
        assert {k: printed[name][k] for k in ("query", "document")} == prompts
    hashes = {p["prompt_hash"] for p in printed.values()}
    assert len(hashes) == 56  # every task's prompts differ, CQADupstack's subforums included
    code, out, _ = run_cli(
        monkeypatch, capsys, "instructions", "--format", "json", "--policy", "mteb", "SciDocsRR"
    )
    assert json.loads(out)["SciDocsRR"]["prompt_hash"] != printed["SciDocsRR"]["prompt_hash"]


def test_each_task_keeps_its_own_settings(tmp_path):
    lock = FileLock(tmp_path / "record.lock")
    settings = {"model": "m", "max_length": 512, "pooling": "last", "policy": "e5"}
    common = {"prompt_hash": lambda names: "h" + "-".join(sorted(names)), "device": "cpu"}
    legacy = {"settings": {**settings, "prompt_hash": "folder"}, "tasks": {"Old": {}}}
    (tmp_path / LEGACY_RUN_RECORD).write_text(json.dumps(legacy), encoding="utf-8")

    def entry(name: str, **changed: object) -> dict:
        return {name: {"settings": {**settings, **changed, "prompt_hash": f"h{name}"}}}

    update_run_record(
        tmp_path, lock, settings, tasks=entry("A"), allow_settings_change=False, **common
    )
    with pytest.raises(ConfigError, match=r"Old: max_length: 512 \(recorded\) vs 16"):
        update_run_record(
            tmp_path,
            lock,
            {**settings, "max_length": 16},
            tasks=entry("B", max_length=16),
            allow_settings_change=False,
            **common,
        )
    update_run_record(
        tmp_path,
        lock,
        {**settings, "max_length": 16},
        tasks=entry("B", max_length=16),
        allow_settings_change=True,
        **common,
    )
    tasks = read_run_record(tmp_path)["tasks"]
    assert tasks["Old"]["settings"]["max_length"] == 512  # the older record's folder settings
    assert "prompt_hash" not in tasks["Old"]["settings"]  # the folder's hash was not its own
    assert (
        tasks["A"]["settings"]["max_length"] == 512
        and tasks["A"]["settings"]["prompt_hash"] == "hA"
    )
    assert (
        tasks["B"]["settings"]["max_length"] == 16 and tasks["B"]["settings"]["prompt_hash"] == "hB"
    )
    assert read_run_record(tmp_path)["settings"]["max_length"] == 16  # the latest run's
