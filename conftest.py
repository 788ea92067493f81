"""Enables the drill plugin (fixtures/plugin.py) in this repository. Where the package is installed, its
`pytest11` entry point loads the same plugin, so `pytest --drill-*` works in any repository."""

pytest_plugins = ["fixtures.plugin"]
