"""Drives the engine from sources and reads logs back: runners, re-execution, the CLI."""
