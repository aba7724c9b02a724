"""How long finished tasks stay readable: bounded by age, count and bytes (OC-CTRL-2186).

A finished task keeps its log (for resume and status) but not its prompt; the
oldest finished tasks are forgotten first once any bound is passed, so memory
stays bounded however fast clients submit.
"""

from __future__ import annotations

from collections import OrderedDict


class Retention:
    """Finished tasks in the order they ended, with the bytes their logs hold."""

    def __init__(self, retain_s: float, max_tasks: int, max_bytes: int) -> None:
        self.retain_s = retain_s
        self.max_tasks = max_tasks
        self.max_bytes = max_bytes
        self._ended: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._ended)

    def add(self, task_id: str, ended_at: float, size_bytes: int) -> list[str]:
        """Keep a task that just ended; returns the tasks to forget now to stay within the bounds."""
        self._ended[task_id] = (ended_at, size_bytes)
        self.bytes += size_bytes
        forget = []
        while len(self._ended) > 1 and (len(self._ended) > self.max_tasks or self.bytes > self.max_bytes):
            forget.append(self._pop_oldest())
        return forget

    def expire(self, now: float) -> list[str]:
        """The tasks that ended more than `retain_s` ago, oldest first; they are no longer kept."""
        horizon = now - self.retain_s
        forget = []
        while self._ended and next(iter(self._ended.values()))[0] < horizon:
            forget.append(self._pop_oldest())
        return forget

    def _pop_oldest(self) -> str:
        task_id, (_, size) = self._ended.popitem(last=False)
        self.bytes -= size
        return task_id
