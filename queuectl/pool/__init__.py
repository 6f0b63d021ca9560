"""The worker pool: one process driving N slots (see loop.py for the loop, and its modules for the parts)."""

from queuectl.pool.loop import Pool

__all__ = ["Pool"]
