"""The `queuectl` command line: a front end over queuectl.services (see app.py for the group)."""

from queuectl.cli.app import main

__all__ = ["main"]
