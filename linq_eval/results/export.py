"""Exporting a run as a submission to mteb's results repository (the leaderboard's data):
mteb's result files, ``model_meta.json`` and ``run_settings.jsonl`` in the repository's layout,
checked by loading them back with mteb's own loader (``ResultCache(DIR).load_results``).

    export_run("runs/linq", "submission")   # -> submission/results/<org__model>/<revision>/
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import mteb

from linq_eval.atomic import atomic_write_bytes
from linq_eval.errors import ResultsError
from linq_eval.paths import MODEL_META, RUN_SETTINGS
from linq_eval.results.reading import ResultSet, load_results
from linq_eval.results.reproduction import RANDOM_WEIGHTS, describe, deviations
from linq_eval.run_record import task_settings
from linq_eval.writable import require_writable_folder

_UNVERSIONED = frozenset({"no_revision_available", "external"})
"""Revision folder names the repository keeps only for old results; new ones name a revision."""
_MIN_MTEB_MAJOR = 2
"""The repository accepts new results only from mteb 2 or later."""


@dataclass(frozen=True)
class ExportedModel:
    """One model and revision written by :func:`export_run`."""

    model: str
    """Model name (``org/name``), as in model_meta.json."""
    revision: str
    """Model revision, the name of its folder."""
    folder: Path
    """The ``<to>/results/<org__model>/<revision>`` folder written."""
    scores: dict[str, float]
    """Task name -> main score as stored in the result file (0-1), what mteb read back."""


def export_run(run: str | Path, to: str | Path, *, force: bool = False) -> list[ExportedModel]:
    """Write every result set of ``run`` under ``to`` in the results repository's layout.

    ResultsError for a set the repository would refuse or with random weights, one that is not
    a reproduction unless ``force`` (then its deviations go into its metadata), a ``to`` that
    holds other files for it, or an export that mteb's loader does not read back.
    """
    require_writable_folder(to, "--to")
    sets = load_results(run)
    found = {}
    for rs in sets:
        _check_submittable(rs)
        found[rs.path] = deviations(rs)
    random = sorted(
        f"{path}: {task}"
        for path, f in found.items()
        for task, what in f.items()
        if RANDOM_WEIGHTS in what
    )
    if random:
        raise ResultsError(
            "Randomly initialised weights are not a model: not exported, even with --force "
            f"({len(random)} task(s): {', '.join(random[:3])}{' ...' if len(random) > 3 else ''})."
        )
    refused = {path: f for path, f in found.items() if f}
    if refused and not force:
        lines = []
        for path, f in refused.items():
            lines += [f"  {path}:", *(f"    {line}" for line in describe(f))]
        raise ResultsError(
            "Not a reproduction of the hub data with the profile's settings, so not a "
            "leaderboard submission:\n" + "\n".join(lines) + "\nRun again without "
            "those options (into a new --output), or pass --force to export anyway with these "
            f"differences written into {RUN_SETTINGS} and {MODEL_META}."
        )
    cache = mteb.ResultCache(Path(to).expanduser())
    exported = [_write(rs, cache, found[rs.path]) for rs in sets]
    _check_with_mteb(cache, exported)
    return exported


def _check_submittable(rs: ResultSet) -> None:
    """Everything the results repository's checks ask of a new result folder."""
    if not (rs.path / MODEL_META).is_file():
        raise ResultsError(
            f"{rs.path}: no {MODEL_META}; the results repository needs the model's metadata "
            "(`linq-eval run` and mteb write it beside the result files)."
        )
    if rs.revision in _UNVERSIONED:
        raise ResultsError(
            f"{rs.path}: {rs.model} has no model revision ({rs.revision!r}); new results in "
            "the results repository name the revision they were computed with."
        )
    covered = _run_settings_scopes(rs.path / RUN_SETTINGS)
    problems = []
    for name in rs.task_names:
        result = rs.task_result(name)
        assert result is not None  # every listed task has a file
        major = str(result.mteb_version or "0").split(".")[0]
        if not major.isdigit() or int(major) < _MIN_MTEB_MAJOR:
            problems.append(f"{name}: written by mteb {result.mteb_version}, not mteb 2")
        scopes = {
            (name, split, block.get("hf_subset", "default"))
            for split, blocks in result.scores.items()
            for block in blocks
        }
        missing = sorted(f"{split}/{subset}" for _, split, subset in scopes - covered)
        if missing:
            problems.append(f"{name}: {', '.join(missing)} missing from {RUN_SETTINGS}")
    if problems:
        raise ResultsError(f"{rs.path} cannot be submitted:\n  " + "\n  ".join(problems))


def _run_settings_scopes(path: Path) -> set[tuple[str, str, str]]:
    """The (task, split, subset) triples run_settings.jsonl has an entry for."""
    if not path.is_file():
        raise ResultsError(
            f"{path.parent}: no {RUN_SETTINGS}; the results repository requires it for new "
            "results (mteb 2 writes it beside the result files)."
        )
    scopes = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError as exc:
            raise ResultsError(f"{path} line {number}: not JSON ({exc})") from None
        # mteb 2.26 writes lists ("splits", "subsets"); older entries one "split" and "subset"
        splits = entry.get("splits") or [entry.get("split")]
        subsets = entry.get("subsets") or [entry.get("subset")]
        scopes |= {(entry.get("task"), split, subset) for split in splits for subset in subsets}
    return scopes


def _write(
    rs: ResultSet, cache: mteb.ResultCache, found: dict[str, dict[str, str]]
) -> ExportedModel:
    """Copy one result set's files (and ``found`` deviations) into the cache, never clobbering."""
    names = [*(p.name for p in rs.task_files.values()), MODEL_META, RUN_SETTINGS]
    folder = cache.get_task_result_path(rs.task_names[0], rs.model, rs.revision).parent
    contents = {name: (rs.path / name).read_bytes() for name in names}
    if found:
        contents.update(_truthful_metadata(rs, contents, found))
    clash = [
        name
        for name, data in contents.items()
        if (folder / name).exists() and (folder / name).read_bytes() != data
    ]
    if clash:
        raise ResultsError(
            f"{folder} already holds other versions of {', '.join(sorted(clash))}; "
            "export into an empty folder (or remove that one)."
        )
    for name, data in contents.items():
        atomic_write_bytes(folder / name, data)
    results = {name: rs.task_result(name) for name in rs.task_names}
    scores = {name: r.score() for name, r in results.items() if r is not None}
    return ExportedModel(rs.model, rs.revision, folder, scores)


def _truthful_metadata(
    rs: ResultSet, contents: dict[str, bytes], found: dict[str, dict[str, str]]
) -> dict[str, bytes]:
    """run_settings.jsonl with each task's deviations, model_meta.json with the max_tokens
    the run used (where all its tasks used one)."""
    lines = []
    for line in contents[RUN_SETTINGS].decode("utf-8").splitlines():
        if line.strip():
            entry = json.loads(line)
            if entry.get("task") in found:
                entry["linq_eval_deviations"] = found[entry["task"]]
            lines.append(json.dumps(entry, ensure_ascii=False))
    out = {RUN_SETTINGS: ("\n".join(lines) + "\n").encode("utf-8")}
    lengths = {
        (task_settings(rs.run_record, name)[0] or {}).get("max_length") for name in rs.task_names
    }
    meta = json.loads(contents[MODEL_META])
    used = lengths.pop() if len(lengths) == 1 else None
    if used is not None and meta.get("max_tokens") != used:
        meta["max_tokens"] = float(used)
        out[MODEL_META] = (json.dumps(meta, indent=2, ensure_ascii=False) + "\n").encode()
    return out


def _check_with_mteb(cache: mteb.ResultCache, exported: list[ExportedModel]) -> None:
    """Load the export with mteb's own loader; every task must come back with its score."""
    loaded = cache.load_results(
        models=sorted({e.model for e in exported}), include_remote=False, require_model_meta=True
    )
    found = {
        (m.model_name, m.model_revision): {
            r.task_name: float(r.get_score()) for r in m.task_results
        }
        for m in loaded
    }
    for e in exported:
        got = found.get((e.model, e.revision), {})
        if got != e.scores:
            raise ResultsError(
                f"mteb's ResultCache({cache.cache_path}) reads {e.model}@{e.revision} as "
                f"{sorted(got)} with scores {got}, not the {len(e.scores)} tasks written "
                f"({e.scores})."
            )


__all__ = ["ExportedModel", "export_run"]
