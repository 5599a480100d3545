"""The ``flowml`` command line: one module per noun, loaded only when its command runs."""

from __future__ import annotations

import sys

from cyclopts import App

from flowml import __version__

app = App(
    name="flowml",
    help="flowml: tracking, projects, models and a registry for Prefect flows.",
    version=__version__,
)
app.command("flowml.cli.experiments:app", name="experiments")
app.command("flowml.cli.runs:app", name="runs")
app.command("flowml.cli.artifacts:app", name="artifacts")
app.command("flowml.cli.traces:app", name="traces")
app.command("flowml.cli.db:app", name="db")
app.command("flowml.cli.models:app", name="models")
app.command("flowml.cli.projects:app", name="projects")
app.command("flowml.cli.prompts:app", name="prompts")
app.command("flowml.cli.projects:run_project", name="run")
app.command("flowml.cli.server:app", name="server")
app.command("flowml.cli.ui:ui", name="ui")
app.command("flowml.cli.importers:app", name="import")


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: a one-line message and exit status 1 on any flowml error."""
    from flowml.exceptions import FlowMLError

    try:
        result = app(argv if argv is not None else sys.argv[1:], result_action="return_value")
    except FlowMLError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return result if isinstance(result, int) else 0
