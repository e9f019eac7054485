"""What the command line imports: ``--help`` and the light commands load neither torch nor
mteb, and the bench's route through the CLI (scripts/gpu_bench.sh runs ``python -m
linq_eval.cli bench`` on a GPU machine without mteb and datasets) loads neither of those."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from conftest import REPO_ROOT


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO_ROOT,
        capture_output=True,
        check=False,
        text=True,
        timeout=600,
    )


def test_help_and_profiles_load_neither_torch_nor_mteb():
    done = _python(
        """
        import runpy, sys
        for name in ("torch", "transformers", "mteb", "datasets", "pandas"):
            sys.modules[name] = None  # importing any of them now raises ImportError
        for args in (["--help"], ["profiles"], ["run", "--help"], ["bench", "--help"]):
            sys.argv = ["linq-eval", *args]
            try:
                runpy.run_module("linq_eval", run_name="__main__")
            except SystemExit as exc:
                assert exc.code in (0, None), (args, exc.code)
        print("ok")
        """
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Commands" in done.stdout and "linq-embed-mistral" in done.stdout
    assert done.stdout.strip().endswith("ok")


def test_bench_route_through_the_cli_needs_neither_mteb_nor_datasets():
    done = _python(
        """
        import sys
        sys.modules["mteb"] = None
        sys.modules["datasets"] = None
        import linq_eval.cli, linq_eval.bench.ablation, linq_eval.bench.throughput
        print("ok")
        """
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")
