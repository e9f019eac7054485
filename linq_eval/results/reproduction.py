"""Whether a run reproduces the hub data with a profile's settings: what ``export`` submits.

A submission to mteb's results repository says, through its result files and
``model_meta.json``, that a model scored so on the hub's dataset (at the revision the file
names) with the model's own settings. A run folder (its record ``linq_eval/run.json``) can
say otherwise, per task:

- its data came from local files (``--data-dir``), not from the hub dataset;
- a setting of its profile was changed (``--max-length 128``, ``--policy``, ...);
- its tasks were made with different settings from each other (a mixed folder).

:func:`deviations` lists each such difference per task; ``export`` refuses a run with any,
or (forced) writes them into the submission's metadata. A folder without a run record (mteb's
own output) has nothing recorded to check.

    from linq_eval.results.reproduction import deviations
    for task, found in deviations(result_set).items():
        print(task, found)   # {"max_length": "128, the profile's is 256"}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from linq_eval.errors import UnknownNameError
from linq_eval.model.profiles import Profile, get_profile
from linq_eval.results.reading import ResultSet
from linq_eval.run_record import SCORE_KEYS, task_settings

_PROFILE_KEYS = ("max_length", "pooling", "policy", "instructions", "eos", "bos", "padding_side")
"""Profile fields a run may change with options, each changing scores (the weights' dtype is
the profile's per device, ``auto``, so it is not one of them)."""
_MIXED_KEYS = tuple(k for k in SCORE_KEYS if k != "prompt_hash")


def deviations(rs: ResultSet) -> dict[str, dict[str, str]]:
    """Task -> {what: how it differs} for every way the run is not a reproduction."""
    record = rs.run_record
    if not record:
        return {}
    tasks = {name: e for name, e in (record.get("tasks") or {}).items() if name in rs.task_files}
    found: dict[str, dict[str, str]] = {}
    profile = _profile(record.get("settings") or {})
    for name, entry in tasks.items():
        own: dict[str, str] = {}
        source = str(entry.get("data_source") or "hub") if isinstance(entry, Mapping) else "hub"
        if source != "hub":
            own["data_source"] = (
                f"{source}, not the hub dataset at revision {entry.get('dataset_revision')}"
            )
        settings, _ = task_settings(record, name)
        if profile is not None and settings:
            for key in _PROFILE_KEYS:
                want = getattr(profile, key)
                if key in settings and settings[key] != want:
                    own[key] = f"{settings[key]!r}, profile {profile.name}'s is {want!r}"
        if own:
            found[name] = own
    for name, text in _mixed(record, list(tasks)).items():
        found.setdefault(name, {})["mixed_settings"] = text
    return dict(sorted(found.items()))


def describe(found: Mapping[str, Mapping[str, str]]) -> list[str]:
    """One line per task: ``STS16: max_length 128, profile all-minilm-l6-v2's is 256``."""
    return [
        f"{task}: " + "; ".join(f"{key} {text}" for key, text in what.items())
        for task, what in found.items()
    ]


def _profile(settings: Mapping[str, Any]) -> Profile | None:
    name = settings.get("profile")
    if not name:
        return None
    try:
        return get_profile(str(name))
    except UnknownNameError:
        return None


def _mixed(record: Mapping[str, Any], names: list[str]) -> dict[str, str]:
    """Tasks whose score-deciding settings differ from the folder's most common ones."""
    groups: dict[str, list[str]] = {}
    values: dict[str, dict[str, Any]] = {}
    for name in names:
        settings, _ = task_settings(record, name)
        part = {k: (settings or {}).get(k) for k in _MIXED_KEYS}
        key = repr(sorted(part.items()))
        groups.setdefault(key, []).append(name)
        values[key] = part
    if len(groups) < 2:
        return {}
    common = max(groups, key=lambda k: len(groups[k]))
    out = {}
    for key, members in groups.items():
        if key == common:
            continue
        keys = [k for k in _MIXED_KEYS if values[key][k] != values[common][k]]
        diff = ", ".join(f"{k} {values[key][k]!r}" for k in keys)
        others = ", ".join(groups[common])
        for name in members:
            out[name] = f"({diff}) differs from the folder's other tasks ({others})"
    return out


__all__ = ["describe", "deviations"]
