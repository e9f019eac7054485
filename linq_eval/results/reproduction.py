"""Whether a run reproduces the hub data with its profile's settings: what ``export`` submits.

Per task, a run's record can show random weights (never a submission), local data, a score
setting other than the profile's, or settings unlike the folder's other tasks (a mixed folder).

    from linq_eval.results.reproduction import deviations
    for task, found in deviations(result_set).items():
        print(task, found)   # {"max_length": "128, profile all-minilm-l6-v2's is 256"}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from linq_eval.errors import UnknownNameError
from linq_eval.profiles import Profile, get_profile, is_random
from linq_eval.results.reading import ResultSet
from linq_eval.run_record import RUN_SCORE_KEYS, is_hub_source, task_settings

RANDOM_WEIGHTS = "random_weights"
"""The deviation no submission may have, even forced."""


def _profile_settings(profile: Profile, device_type: str) -> dict[str, Any]:
    """The score settings a run of ``profile`` records, where the profile fixes them (model
    and revision name what was evaluated, in the submission's folder: not deviations)."""
    fixed = ("max_length", "pooling", "eos", "bos", "padding_side", "policy", "instructions")
    expected = {"dtype": profile.dtype_for(device_type), **{k: getattr(profile, k) for k in fixed}}
    if profile.template is not None:
        expected["template"] = profile.template
    return expected


def deviations(rs: ResultSet) -> dict[str, dict[str, str]]:
    """Task -> {what: how it differs} for every way the run is not a reproduction."""
    record = rs.run_record
    if not record:
        return {}
    tasks = {name: e for name, e in (record.get("tasks") or {}).items() if name in rs.task_files}
    folder = record.get("settings") or {}
    profile = _profile(folder)
    device_type = "cuda" if str(folder.get("device", "")).startswith("cuda") else "cpu"
    found: dict[str, dict[str, str]] = {}
    for name, entry in tasks.items():
        entry = entry if isinstance(entry, Mapping) else {}
        settings = task_settings(record, name)[0] or {}
        own: dict[str, str] = {}
        if is_random(settings.get("model")):
            own[RANDOM_WEIGHTS] = f"{settings['model']}: randomly initialised weights"
        source = entry.get("data_source")
        if not is_hub_source(source):
            data = settings.get("data_hash")
            own["data_source"] = (
                f"{source}{f' ({data})' if data else ''}, not the hub dataset at revision "
                f"{entry.get('dataset_revision')}"
            )
        if profile is not None:
            for key, want in _profile_settings(profile, device_type).items():
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
        part = {k: (settings or {}).get(k) for k in RUN_SCORE_KEYS}
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
        diff = ", ".join(f"{k} {v!r}" for k, v in values[key].items() if v != values[common][k])
        others = ", ".join(groups[common])
        for name in members:
            out[name] = f"({diff}) differs from the folder's other tasks ({others})"
    return out


__all__ = ["RANDOM_WEIGHTS", "describe", "deviations"]
