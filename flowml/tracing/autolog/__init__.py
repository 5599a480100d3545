"""Autologging for LLM client libraries: one module per client (``openai``).

Each module's ``autolog()`` patches the client's request methods so every call records a
span (model, messages, tool calls, token usage, latency), nested under whatever span is
current, or as its own trace.
"""
