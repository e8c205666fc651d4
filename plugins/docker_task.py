"""``AirloopDockerOperator``: one task body in a container of the runtime image (DockerOperator).

The container runs ``airloop-task <body>`` with the body's keyword arguments as JSON
(``AIRLOOP_TASK_KWARGS``), the worker's ``AIRLOOP_*`` settings as private environment (DSNs carry secrets:
never rendered into the UI), and the lake volume mounted where the settings put the lake. Its output streams
into the task log; its ``AIRLOOP_RESULT`` line becomes the XCom; exit statuses map to Airflow outcomes
(``airloop.orchestration.run_task``): skip, fail without retry, or fail (retried like any task). Where the
engine is, which image, network and volume: ``AIRLOOP_DOCKER__*`` (``airloop.settings.DockerRunnerSettings``),
read on the worker when the task runs.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from airflow.providers.docker.exceptions import DockerContainerFailedException
from airflow.providers.docker.operators.docker import DockerOperator
from airflow.sdk.exceptions import AirflowFailException
from docker.types import Mount

from airloop.orchestration.run_task import EXIT_FAIL, EXIT_SKIP, RESULT_PREFIX
from airloop.settings import load_settings


def task_environment(environ: dict[str, str]) -> dict[str, str]:
    """The worker's Airloop settings for the container, minus the runner's own (the body runs locally
    there)."""
    env = {
        k: v
        for k, v in environ.items()
        if k.startswith("AIRLOOP_") and not k.startswith("AIRLOOP_DOCKER__") and k != "AIRLOOP_TASK_KWARGS"
    }
    env["AIRLOOP_TASK_RUNNER"] = "local"
    return env


def parse_result(lines: list[str] | str | None) -> Any:
    """The JSON result of the last ``AIRLOOP_RESULT`` line of the container's output."""
    for line in reversed([lines] if isinstance(lines, str) else lines or []):
        text = line.strip()
        if text.startswith(RESULT_PREFIX):
            return json.loads(text[len(RESULT_PREFIX) :])
    raise AirflowFailException("the task container exited 0 without an AIRLOOP_RESULT line")


class AirloopDockerOperator(DockerOperator):
    """Run ``airloop.orchestration.tasks.<body>`` in the runtime image; see the module docstring."""

    template_fields = (*DockerOperator.template_fields, "call_kwargs")
    ui_color = "#d6eaf8"

    def __init__(self, *, body: str, call_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("command", ["airloop-task", body])
        super().__init__(xcom_all=True, skip_on_exit_code=EXIT_SKIP, mount_tmp_dir=False, **kwargs)
        self.body = body
        self.call_kwargs = call_kwargs or {}

    def execute(self, context: Any) -> Any:
        settings = load_settings()
        runner = settings.docker
        self.image = runner.image
        self.docker_url = runner.url
        self.network_mode = runner.network
        self.auto_remove = runner.auto_remove
        self.mem_limit = runner.mem_limit
        self.timeout = runner.api_timeout_seconds
        if runner.lake_volume:
            kind = "bind" if runner.lake_volume.startswith("/") else "volume"
            self.mounts = [Mount(target=str(settings.lake), source=runner.lake_volume, type=kind)]
        ti = context["ti"]
        self.labels = {
            "airloop.body": self.body,
            "airloop.dag_id": ti.dag_id,
            "airloop.task_id": ti.task_id,
            "airloop.run_id": ti.run_id,
            "airloop.try_number": str(ti.try_number),
        }
        self.environment = {**(self.environment or {}), "AIRLOOP_TASK_KWARGS": json.dumps(self.call_kwargs)}
        self._private_environment = task_environment(dict(os.environ))
        try:
            lines = super().execute(context)
        except DockerContainerFailedException as exc:
            status = re.search(r"'StatusCode': (\d+)", str(exc))
            if status and int(status.group(1)) == EXIT_FAIL:
                raise AirflowFailException(
                    f"{self.body} failed (no retry): see the container's output above"
                ) from exc
            raise
        from task_runner import set_outlet_extra

        result = parse_result(lines)
        set_outlet_extra(self, context.get("outlet_events"), result)
        return result
