"""What each input receives: the policies, the instruction sets and the one prompt builder.

Public modules: ``policies`` (``Policy``, ``get_policy``), ``instruction_sets``
(``load_instruction_set``), ``builder`` (``prompt_for``, ``task_prompts``, the prompt hash).
``instruction_file`` serves ``instruction_sets``.
"""

__all__ = ["builder", "instruction_sets", "policies"]
