"""GenAI building blocks: the prompt registry (versioned ``{{variable}}`` templates) and
``evaluate`` with scorers.

LLM judges (`flowml.genai.judges`) ask any OpenAI-compatible endpoint. ``evaluate`` traces
each prediction and stores the verdicts as assessments on its trace (`flowml.genai.traced`).

Example:
    >>> from flowml import genai
    >>> genai.register_prompt("qa", "Answer {{question}} briefly.", commit_message="first")
    >>> genai.load_prompt("prompts:/qa/1").format(question="Why?")
    'Answer Why? briefly.'
"""

from __future__ import annotations

from flowml._lazy import lazy_exports

_EXPORTS = {
    "Feedback": "flowml.genai.scorers",
    "GenAIEvaluationResult": "flowml.genai.evaluation",
    "Scorer": "flowml.genai.scorers",
    "evaluate": "flowml.genai.evaluation",
    "scorer": "flowml.genai.scorers",
    "MissingPromptVariables": "flowml.genai.template",
    "Prompt": "flowml.genai.prompts",
    "PromptTemplateError": "flowml.genai.template",
    "PromptVersion": "flowml.genai.prompts",
    "delete_prompt_alias": "flowml.genai.prompts",
    "get_prompt_runs": "flowml.genai.prompts",
    "get_prompt_traces": "flowml.genai.prompts",
    "load_prompt": "flowml.genai.prompts",
    "register_prompt": "flowml.genai.prompts",
    "search_prompt_versions": "flowml.genai.prompts",
    "search_prompts": "flowml.genai.prompts",
    "set_prompt_alias": "flowml.genai.prompts",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(
    __name__,
    _EXPORTS,
    globals(),
    {"judges": "flowml.genai.judges", "scorers": "flowml.genai.scorers"},
)
