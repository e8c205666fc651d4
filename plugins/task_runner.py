"""Where the heavy task bodies run: the worker's own process, or a container of the runtime image.

``library_task(task_id, body, **kwargs)`` wires one body of ``airloop.orchestration.tasks`` into a DAG.
``AIRLOOP_TASK_RUNNER=local`` (default) makes it a PythonOperator that calls the body in the task process;
``docker`` makes it an ``AirloopDockerOperator`` (apache-airflow-providers-docker) that runs
``airloop-task <body>`` in the runtime image with the worker's ``AIRLOOP_*`` settings as environment and the
lake mounted. The DAG files are the same in both modes. Keyword arguments are JSON values or XComArgs of
upstream tasks; the result is the task's XCom either way; an ``AirflowSkipException`` skips and an
``AirflowFailException`` fails without retry in both modes (exit statuses in
``airloop.orchestration.run_task``).
"""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.python import PythonOperator

from airloop.settings import load_settings


def run_body(body: str, kwargs: dict[str, Any], ti: Any = None, outlet_events: Any = None) -> Any:
    """The local runner: call the body in this process; its result is also each outlet's event extra."""
    from airloop.orchestration.run_task import run

    result = run(body, kwargs)
    set_outlet_extra(ti.task if ti is not None else None, outlet_events, result)
    return result


def set_outlet_extra(task: Any, outlet_events: Any, result: Any) -> None:
    """A body's (dict) result is the ``extra`` of each Asset event its task emits, in both runners."""
    if task is None or outlet_events is None or not isinstance(result, dict):
        return
    for outlet in task.outlets:
        outlet_events[outlet].extra = result


def library_task(
    task_id: str,
    body: str,
    *,
    outlets: list[Any] | None = None,
    multiple_outputs: bool = False,
    **kwargs: Any,
) -> Any:
    """One task running ``airloop.orchestration.tasks.<body>(**kwargs)``; returns its output (XComArg)."""
    settings = load_settings()  # environment only: which runner, which image (no I/O at parse time)
    common: dict[str, Any] = {
        "task_id": task_id,
        "outlets": outlets or [],
        "multiple_outputs": multiple_outputs,
    }
    if settings.task_runner == "docker":
        from docker_task import AirloopDockerOperator

        return AirloopDockerOperator(
            body=body, call_kwargs=kwargs, image=settings.docker.image, **common
        ).output
    return PythonOperator(
        python_callable=run_body, op_kwargs={"body": body, "kwargs": kwargs}, **common
    ).output
