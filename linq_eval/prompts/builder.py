"""The one prompt builder and the one prompt hash.

Given a policy (a ``Policy``, or its name, looked up once per call), an instruction set (with its
template, unless a profile overrides it) and task names, this module says which prefix every input
side of every task receives and hashes those prefixes. The encoder
(``DecoderEncoder.prompt_for/task_prompts/prompt_hash``), the suite runner (the ``prompt_hash`` of
each task in the run record) and ``linq-eval instructions`` all call these functions, so the hash a
run records is the hash the command prints.

    from linq_eval.prompts.builder import task_prompts, tasks_prompt_hash
    from linq_eval.prompts.instruction_sets import load_instruction_set
    e5 = load_instruction_set("e5")
    task_prompts(["SciFact"], "e5", e5)   # {'SciFact': {'query': 'Instruct: ...', 'document': ''}}
    tasks_prompt_hash(["SciFact"], "e5", e5)   # '<16 hex digits>'

Task types and prompt types come from mteb's registry as data (``linq_eval.registry``): nothing
here imports mteb.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping

from linq_eval.benchmarks import expanded_names
from linq_eval.errors import ConfigError
from linq_eval.prompts.instruction_sets import InstructionSet, as_instruction_set
from linq_eval.prompts.policies import Policy, get_policy
from linq_eval.registry import TaskInfo, registry

_SIDES = ("query", "document")
"""The two input sides of a task, as ``task_prompts`` names them."""


def effective_template(
    policy: str | Policy, template: str | None, instruction_set: InstructionSet | None
) -> str | None:
    """The template instructed inputs use: ``template`` (a profile's override) or the
    instruction set's (None: neither is given); ``""`` under a policy that never instructs."""
    if not get_policy(policy).instruct:
        return ""
    if template is not None:
        return template
    return instruction_set.template if instruction_set is not None else None


def prompt_for(
    policy: str | Policy,
    instruction_set: InstructionSet | None,
    template: str | None,
    task_name: str,
    task_type: str,
    prompt_type: str | None,
) -> str:
    """The exact prefix of one input of a task and prompt type (``""`` when none)."""
    pol = get_policy(policy)
    if not pol.applies(task_type, prompt_type):
        return ""
    if instruction_set is None:
        raise ConfigError(
            f"Policy {pol.name!r} instructs {task_type} inputs but no instruction set is given "
            "(--instructions)"
        )
    return instruction_set.prefix(task_name, effective_template(pol, template, instruction_set))


def task_prompts(
    task_names: Iterable[str],
    policy: str | Policy,
    instruction_set: InstructionSet | str | None,
    template: str | None = None,
) -> dict[str, dict[str, str]]:
    """The exact prefix that each task's queries and documents receive under a policy.

    Returns ``{task: {"query": prefix, "document": prefix}}`` with ``""`` where the policy
    applies no instruction. ``query`` is the queries (retrieval, reranking), the first input
    (STS, pair classification) or every input (classification, clustering, summarization);
    ``document`` is the corpus, the reranking candidates or the second input. The policy is
    asked with the prompt type mteb passes for that input (``_task_encodings``): mteb v2
    encodes non-retrieval inputs with prompt type None, so STS second sentences are instructed
    under every instructing policy. Every task needs an instruction unless the policy never
    instructs.
    """
    pol = get_policy(policy)
    iset = as_instruction_set(instruction_set)
    names = list(dict.fromkeys(task_names))
    if pol.instruct:
        if iset is None:
            raise ConfigError(f"Policy {pol.name!r} instructs inputs: give an instruction set")
        iset.require(names)
        tmpl = effective_template(pol, template, iset) or ""
        if "{instruction}" not in tmpl:
            raise ConfigError(f"Template {tmpl!r} must contain '{{instruction}}'.")
    return {
        name: {
            side: prompt_for(pol, iset, template, name, task_type, ptype)
            for side, ptype in zip(_SIDES, (query_type, document_type), strict=True)
        }
        for name, (task_type, query_type, document_type) in _task_encodings(names).items()
    }


def _prompt_hash(prompts: Mapping[str, Mapping[str, str]], template: str | None) -> str:
    """The prompt hash: 16 hex digits of sha256 over the template and every task's prefixes
    (``task_prompts``' output). Equal hashes: every input of these tasks got the same prefix."""
    blob = json.dumps(
        {"template": template, "prompts": prompts}, sort_keys=True, ensure_ascii=False
    ).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def tasks_prompt_hash(
    task_names: Iterable[str],
    policy: str | Policy,
    instruction_set: InstructionSet | str | None,
    template: str | None = None,
) -> str:
    """The prompt hash over a set of tasks (order and repeats do not matter); give aggregate
    tasks' subtasks too (``linq_eval.benchmarks.expanded_names``), as a run encodes them."""
    pol, iset = get_policy(policy), as_instruction_set(instruction_set)
    prompts = task_prompts(sorted(set(task_names)), pol, iset, template)
    return _prompt_hash(prompts, effective_template(pol, template, iset))


def _task_prompt_hash(
    task: TaskInfo,
    policy: str | Policy,
    instruction_set: InstructionSet | str | None,
    template: str | None = None,
) -> str:
    """The prompt hash a run of ``task`` records (its subtasks included, for an aggregate)."""
    return tasks_prompt_hash(expanded_names([task]), policy, instruction_set, template)


def prompts_with_hashes(
    tasks: Iterable[TaskInfo],
    policy: str | Policy,
    instruction_set: InstructionSet | str | None,
    template: str | None = None,
) -> dict[str, dict[str, str | None]]:
    """Per task: its ``query`` and ``document`` prefixes, the task whose instruction they carry
    (``instruction_from``: the task itself, the one it derives from, or None when nothing is
    instructed) and the ``prompt_hash`` a run of the task with these settings records (what
    ``linq-eval instructions --format json`` prints)."""
    tasks = list(tasks)
    pol, iset = get_policy(policy), as_instruction_set(instruction_set)
    prompts = task_prompts([t.name for t in tasks], pol, iset, template)
    return {
        t.name: {
            **prompts[t.name],
            "instruction_from": instruction_from(t.name, prompts[t.name], iset),
            "prompt_hash": _task_prompt_hash(t, pol, iset, template),
        }
        for t in tasks
    }


def instruction_from(
    task: str, prompts: Mapping[str, str], instruction_set: InstructionSet | None
) -> str | None:
    """The task whose instruction ``task``'s inputs carry (``InstructionSet.source_of``), or
    None when the policy instructs none of them."""
    if instruction_set is None or not any(prompts.values()):
        return None
    return instruction_set.source_of(task)


def instruction_set_hash(
    instruction_set: InstructionSet,
    task_names: Iterable[str] | None = None,
    *,
    template: str | None = None,
) -> str:
    """A fingerprint of an instruction set's strings: the prompt hash of its tasks (default:
    all) with every input instructed, under ``template`` (default: the set's).

    It depends only on the strings, not on the set's name or version; it equals the prompt
    hash a run records for tasks whose inputs are all instructed (e5's non-retrieval tasks).
    """
    iset = instruction_set
    names = iset.task_names if task_names is None else list(task_names)
    iset.require(names)
    tmpl = iset.template if template is None else template
    prompts = {name: dict.fromkeys(_SIDES, iset.prefix(name, tmpl)) for name in names}
    return _prompt_hash(prompts, tmpl)


def task_types(task_names: Iterable[str]) -> dict[str, str]:
    """mteb's task type (``Retrieval``, ``STS`` ...) of each task."""
    return {name: enc[0] for name, enc in _task_encodings(task_names).items()}


def _task_encodings(task_names: Iterable[str]) -> dict[str, tuple[str, str | None, str | None]]:
    """Task name -> (task type, prompt type of the query side, of the document side)."""
    reg = registry()
    encodings = {}
    for name in dict.fromkeys(task_names):
        task = reg.task(name)
        encodings[name] = (task.type, task.query_prompt, task.document_prompt)
    return encodings


__all__ = [
    "effective_template",
    "instruction_from",
    "instruction_set_hash",
    "prompt_for",
    "prompts_with_hashes",
    "task_prompts",
    "task_types",
    "tasks_prompt_hash",
]
