"""GenAI: the prompt registry."""
