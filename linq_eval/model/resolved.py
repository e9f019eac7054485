"""A profile resolved once: the ``Profile`` with its ``Policy`` object and its loaded
``InstructionSet``, which every later step reads instead of looking them up by name again.

    from linq_eval.profiles import get_profile
    from linq_eval.model.resolved import resolve
    run = resolve(get_profile("linq-embed-mistral"))
    run.policy.name, run.instruction_set.name        # ('e5', 'e5')
    run.prompts(["SciFact"])["SciFact"]["document"]  # ''

Names are looked up here and only here; entry points given names (``load_encoder``,
``DecoderEncoder`` given a bare ``Profile``) resolve once at their boundary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from linq_eval.errors import ConfigError
from linq_eval.profiles import Profile
from linq_eval.prompts.builder import task_prompts
from linq_eval.prompts.instruction_sets import InstructionSet, load_instruction_set
from linq_eval.prompts.policies import Policy, get_policy


@dataclass(frozen=True)
class ResolvedProfile:
    """A profile with the objects its names stand for."""

    profile: Profile
    policy: Policy
    """``get_policy(profile.policy)``."""
    instruction_set: InstructionSet | None
    """The loaded set of ``profile.instructions``; None when the policy never instructs or the
    profile names no set (a run then stops in ``require_instructions``)."""

    def require_instructions(self, task_names: Sequence[str]) -> InstructionSet | None:
        """The instruction set, after checking that it covers every task (one error listing
        all); None under a policy that never instructs."""
        if not self.policy.instruct:
            return None
        if self.instruction_set is None:
            raise ConfigError(
                f"Policy {self.policy.name!r} instructs inputs but no instruction set is given "
                "(--instructions)"
            )
        self.instruction_set.require(task_names)
        return self.instruction_set

    def prompts(self, task_names: Sequence[str]) -> dict[str, dict[str, str]]:
        """The prefix each task's query and document sides receive (``task_prompts``)."""
        return task_prompts(
            task_names, self.policy, self.require_instructions(task_names), self.profile.template
        )


def resolve(profile: Profile, instruction_set: InstructionSet | None = None) -> ResolvedProfile:
    """Look up the profile's policy (an unknown one: "Did you mean") and load its instruction
    set, unless ``instruction_set`` is given or the policy never instructs."""
    policy = get_policy(profile.policy)
    if instruction_set is None and policy.instruct and profile.instructions:
        instruction_set = load_instruction_set(profile.instructions)
    return ResolvedProfile(profile, policy, instruction_set)


__all__ = ["ResolvedProfile", "resolve"]
