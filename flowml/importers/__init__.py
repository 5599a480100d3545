"""Importers: bring another tool's tracking and registry data into flowml's stores.

One subpackage per source tool (`flowml.importers.mlflow`). Importers sit above the
tracking and registry layers because they write both, and below the CLI, which only
delegates to them.
"""
