"""The sdist and the wheel carry the shipped data, and an installed wheel works from anywhere.

The source tree is copied to a temporary folder (so that no build output lands in the
checkout), built into an sdist, the wheel is built from the unpacked sdist (what pip does
with an sdist from an index), installed with ``--target`` into a third folder and run from a
fourth with only that folder on ``PYTHONPATH``: its instruction sets and baselines must come
from inside the installed package, and its output must equal the checkout's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from cli_helpers import run_cli

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCHMARK = "MTEB(eng, v1)"
DATA_ROOTS = {  # folder in the checkout -> folder inside the installed package
    "task_instructions": "linq_eval/_data/task_instructions",
    "results/baselines": "linq_eval/_data/baselines",
}


def _files(folder: Path, pattern: str = "*") -> list[str]:
    """Files under ``folder`` (relative, POSIX), without caches and hidden files."""
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob(pattern)
        if p.is_file()
        and "__pycache__" not in p.parts
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def _copy_source(dest: Path) -> Path:
    """The checkout without build outputs, caches, virtual environments or run outputs."""

    def ignore(folder: str, names: list[str]) -> set[str]:
        skip = {n for n in names if n.startswith(".") or n.endswith(".egg-info")}
        skip |= {"__pycache__", "build", "dist"} & set(names)
        if Path(folder) == REPO_ROOT / "results":  # run outputs; only baselines/ is tracked
            skip |= set(names) - {"baselines"}
        return skip

    shutil.copytree(REPO_ROOT, dest, ignore=ignore)
    return dest


def _check(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, f"{' '.join(cmd)}:\n{(proc.stdout + proc.stderr)[-4000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """The sdist, the wheel built from it, and the wheel installed with ``--target``."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = _copy_source(tmp / "source")
    build_sdist = "import setuptools.build_meta as b, sys; print(b.build_sdist(sys.argv[1]))"
    name = _check([sys.executable, "-c", build_sdist, str(tmp / "sdist")], source)
    sdist = tmp / "sdist" / name.strip().splitlines()[-1]
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp / "unpacked", filter="data")
    (unpacked,) = (tmp / "unpacked").iterdir()
    pip = [sys.executable, "-m", "pip"]
    _check(
        [
            *pip,
            "wheel",
            str(unpacked),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp / "dist"),
        ],
        tmp,
    )
    (wheel,) = (tmp / "dist").glob("linq_eval-*.whl")
    _check([*pip, "install", "--no-deps", "-q", "--target", str(tmp / "site"), str(wheel)], tmp)
    (tmp / "elsewhere").mkdir()
    return {"sdist": sdist, "wheel": wheel, "site": tmp / "site", "cwd": tmp / "elsewhere"}


def test_sdist_and_wheel_hold_every_data_file_and_module(built):
    with tarfile.open(built["sdist"]) as tar:
        in_sdist = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    with zipfile.ZipFile(built["wheel"]) as whl:
        in_wheel = set(whl.namelist())
    yamls = _files(REPO_ROOT / "task_instructions", "*.yaml")
    assert {"e5.yaml", "mteb-v2.yaml"} <= set(yamls)
    baselines = _files(REPO_ROOT / "results" / "baselines")
    assert any(f.endswith("linq_eval_baseline.json") for f in baselines)
    for folder, files in (("task_instructions", yamls), ("results/baselines", baselines)):
        assert not {f"{folder}/{f}" for f in files} - in_sdist, f"{folder} missing in the sdist"
        installed = DATA_ROOTS[folder]
        missing = {f"{installed}/{f}" for f in files} - in_wheel
        assert not missing, f"{folder} missing in the wheel: {sorted(missing)[:5]}"
    modules = {f"linq_eval/{f}" for f in _files(REPO_ROOT / "linq_eval", "*.py")}
    assert not modules - in_wheel, f"modules missing in the wheel: {sorted(modules - in_wheel)}"


def _installed(built, *args: str) -> str:
    """``python ARGS`` from a folder outside the checkout, importing only the installed wheel."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINQ_EVAL_")}
    env.update(PYTHONPATH=str(built["site"]), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    return _check([sys.executable, *args], built["cwd"], env)


def test_installed_wheel_reads_its_own_data(built, monkeypatch, capsys):
    where = _installed(
        built,
        "-c",
        "import linq_eval.paths as p; print(p.PACKAGE_DIR); "
        "print(p.instructions_root()); print(p.baselines_root())",
    )
    package, instructions, baselines = (Path(line) for line in where.split())
    site = built["site"].resolve()
    assert package == site / "linq_eval"
    assert instructions == site / DATA_ROOTS["task_instructions"]
    assert baselines == site / DATA_ROOTS["results/baselines"]

    table = _installed(built, "-m", "linq_eval", "table", "--baselines", "published")
    code, expected, err = run_cli(monkeypatch, capsys, "table", "--baselines", "published")
    assert code == 0, err
    assert table == expected

    listing = _installed(built, "-m", "linq_eval", "instructions", "--benchmark", BENCHMARK)
    code, expected, err = run_cli(monkeypatch, capsys, "instructions", "--benchmark", BENCHMARK)
    assert code == 0, err
    header, _, body = listing.partition("\n")
    assert str(instructions / "e5.yaml") in header
    assert body == expected.partition("\n")[2]
    assert len(body.splitlines()) > 56  # a header row and one row per task of the benchmark
