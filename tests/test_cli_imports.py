"""What the command line imports: ``--help`` and the light commands load neither torch nor
mteb, and the bench's route through the CLI (scripts/gpu_bench.sh runs ``python -m
linq_eval.cli bench`` on a GPU machine without mteb and datasets) loads neither of those."""

from __future__ import annotations

import ast
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


def test_cheap_answers_load_neither_torch_nor_mteb(tmp_path):
    """Planning, prompts, tables, comparisons and every bad name or option are answered from
    mteb's registry as data and the result files themselves: with torch, transformers,
    sentence-transformers and mteb unimportable, each gives its answer and exit code."""
    from linq_eval.registry import registry

    registry()  # the snapshot the commands read (the session's cache: LINQ_EVAL_CACHE)
    linq = "published:Linq-AI-Research/Linq-Embed-Mistral"
    sfr = "published:Salesforce/SFR-Embedding-Mistral"
    cases = [
        (["plan", "--tasks", "SciFact", "STS12", "--output", str(tmp_path)], 0, "GPU-hours"),
        (
            ["plan", "--benchmark", "MTEB(eng, v2)", "--output", str(tmp_path)],
            0,
            "# 41 tasks (0 done), 369.9M tokens in all",
        ),
        (["instructions", "--tasks", "SciFact"], 0, "Given a scientific claim"),
        (["table", "--baselines", "published"], 0, "| Linq-Embed-Mistral | 60.19 | 68.17 |"),
        (["compare", linq, "--reference", sfr, "--task-types", "STS"], 1, "Different models"),
        (["run", "--model", "no-such-model"], 2, "Unknown profile 'no-such-model'"),
        (["run", "--tasks", "SciFakt"], 2, "Did you mean: 'SciFact'"),
        (["plan", "--benchmark", "MTEB(eng, v9)"], 2, "Unknown benchmark"),
        (["compare", "x", "--reference", "y", "--format", "xml"], 2, "Unknown format 'xml'"),
        (["compare", "x", "--reference", "y", "--tolerance", "-1"], 2, "--tolerance must be"),
        (  # a command that runs a model says which extra it needs
            ["run", "--model", "all-minilm-l6-v2", "--tasks", "STS12", "--output", str(tmp_path)],
            2,
            "needs torch (not installed): pip install 'linq-eval[models]'",
        ),
    ]
    done = _python(
        f"""
        import contextlib, io, runpy, sys
        for name in ("torch", "transformers", "sentence_transformers", "mteb"):
            sys.modules[name] = None  # importing any of them now raises ImportError
        for args, want, _ in {cases!r}:
            sys.argv = ["linq-eval", *args]
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    runpy.run_module("linq_eval", run_name="__main__")
                    code = 0
                except SystemExit as exc:
                    code = exc.code or 0
            print(repr((args, code, out.getvalue() + err.getvalue())))
        """
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answers = [ast.literal_eval(line) for line in done.stdout.splitlines()]
    for (args, want, text), (_, code, said) in zip(cases, answers, strict=True):
        assert code == want and text in said, (args, code, said[-2000:])
