"""queuectl: run shell commands in the background, reliably."""

__version__ = "0.1.0"
