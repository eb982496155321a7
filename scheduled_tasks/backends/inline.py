"""The ``inline`` backend: the runner that claims a run executes it (one machine)."""

from __future__ import annotations

from collections.abc import Sequence

from scheduled_tasks.backends.base import Backend


class InlineBackend(Backend):
    """Runs claims in the claiming process. The runner's pool does it for scheduled work
    (``runner.tick`` starts each claim as ``running``); :meth:`submit` runs executions that
    were claimed ``pending`` (by another backend's dispatcher before a switch of backend) here,
    one after another."""

    name = "inline"
    executes_here = True

    def submit(self, execution_ids: Sequence[int]) -> None:
        from scheduled_tasks import worker

        for execution_id in execution_ids:
            worker.run_execution(execution_id, runner_id=worker.identity("inline"))
