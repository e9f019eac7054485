"""A run's configuration is resolved once: the profile, its policy and its instruction set are
looked up by name one time each while a run is planned and its encoder built, and every later
step reads the resolved objects."""

from __future__ import annotations

from collections import Counter

import pytest

from linq_eval import profiles
from linq_eval.errors import ConfigError, UnknownNameError
from linq_eval.model.loading import load_encoder
from linq_eval.model.resolved import ResolvedProfile, resolve
from linq_eval.prompts import instruction_sets, policies
from linq_eval.run.config import RunConfig
from linq_eval.run.runner import load_run_encoder, prepare


class _Counting(dict):
    """A registry that counts lookups by name."""

    def __init__(self, items, counts: Counter, what: str) -> None:
        super().__init__(items)
        self.counts, self.what = counts, what

    def __getitem__(self, key):
        self.counts[self.what] += 1
        return super().__getitem__(key)


@pytest.fixture
def lookups(monkeypatch) -> Counter:
    """Counts of profile, policy and instruction-set lookups by name from now on."""
    counts: Counter = Counter()
    monkeypatch.setattr(profiles, "PROFILES", _Counting(profiles.PROFILES, counts, "profile"))
    monkeypatch.setattr(policies, "POLICIES", _Counting(policies.POLICIES, counts, "policy"))
    resolve_path = instruction_sets._resolve_path

    def counted(name_or_path):
        counts["instruction set"] += 1
        return resolve_path(name_or_path)

    monkeypatch.setattr(instruction_sets, "_resolve_path", counted)
    return counts


def test_a_run_resolves_its_profile_policy_and_instructions_once(lookups, tmp_path):
    config = RunConfig(
        random_init="tiny",
        tasks=("SciFact", "STS12", "CQADupstackRetrieval"),
        output=tmp_path / "out",
        progress=False,
    )
    prepared = prepare(config)  # what `linq-eval plan` and `run --dry-run` do
    assert prepared.resolved.policy.name == "e5" and prepared.resolved.instruction_set
    assert len(prepared.plan.rows) == 3
    assert lookups == {"profile": 1, "policy": 1, "instruction set": 1}

    encoder = load_run_encoder(config, "cpu", prepared.resolved)  # what the run does next
    assert encoder.resolved is prepared.resolved
    encoder.prompt_hash(["SciFact", "STS12"]), encoder.score_settings(), encoder.settings()
    assert encoder.prompt_for("SciFact", "Retrieval", "query").startswith("Instruct: ")
    assert encoder.with_speed(encoder.speed).resolved is prepared.resolved
    assert lookups == {"profile": 1, "policy": 1, "instruction set": 1}


def test_a_profile_given_by_name_is_resolved_once_at_the_boundary(lookups, monkeypatch):
    """``load_encoder("all-minilm-l6-v2")``: one lookup of each name, before any weights."""
    seen: list[ResolvedProfile] = []

    def no_weights(profile, *args):
        seen.append(profile)
        raise RuntimeError("weights not needed")

    monkeypatch.setattr("linq_eval.model.loading._load_weights", no_weights)
    with pytest.raises(RuntimeError, match="weights not needed"):
        load_encoder("all-minilm-l6-v2", device="cpu")
    assert seen[0].name == "all-minilm-l6-v2"
    assert lookups == {"profile": 1, "policy": 1}  # policy "none": no instruction set


def test_resolution_checks_the_policy_and_the_instructions():
    with pytest.raises(UnknownNameError, match="Did you mean"):
        resolve(profiles.get_profile("linq-embed-mistral").with_overrides(policy="e55"))
    bare = resolve(profiles.get_profile("all-minilm-l6-v2").with_overrides(policy="e5"))
    assert bare.instruction_set is None
    with pytest.raises(ConfigError, match="no instruction set"):
        bare.require_instructions(["SciFact"])
