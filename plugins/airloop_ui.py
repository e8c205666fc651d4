"""The Airloop view in Airflow's UI: a plugin with a FastAPI app, a nav entry and task extra links.

Facts about Airflow 3.3 this relies on (read in the installed ``airflow`` package):

- ``airflow.plugins_manager`` imports every ``.py`` file of the plugins folder in every component that loads
  plugins - the api-server, the scheduler, the dag-processor, and each task process (task_runner calls
  ``integrate_macros_plugins``). So this module imports nothing heavy: the FastAPI app
  (``airloop_ui_app.create_app``; ``import fastapi`` alone costs ~0.5 s here) is built on the first request
  by ``_LazyApp``, which only the api-server ever receives.
- ``fastapi_apps`` entries are mounted by ``airflow.api_fastapi.app.init_plugins`` with
  ``app.mount(url_prefix, app)`` under the API root path; ``/api/v2``, ``/ui``, ``/execution``, ``/auth`` and
  ``/pluginsv2`` are reserved prefixes. Mounted apps get NO authentication from Airflow: every endpoint of
  ours checks the caller itself (``airloop_ui_app.identity``).
- ``external_views`` with ``destination: nav`` and a ``url_route`` become a top-level nav item (no
  ``category``) that opens ``/plugin/<url_route>``, an iframe of ``href`` with ``sandbox="allow-scripts
  allow-same-origin allow-forms allow-downloads"``: same origin, so the session cookie reaches our pages and
  forms work; no ``allow-popups``, so our links stay in the frame.
- ``global_operator_extra_links`` are evaluated in the api-server for every task (``get_link(operator,
  ti_key=...)``); a falsy link is returned as ``null`` and the UI shows no button for it. (Per-operator
  links would be computed by the worker at the end of the task instead and stored as XCom.)
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from airflow.plugins_manager import AirflowPlugin
from airflow.sdk import BaseOperatorLink

URL_PREFIX = "/airloop"


def _root_path() -> str:
    """API root path: ``[api] base_url``'s path (``""`` at the server root), as Airflow derives it."""
    from airflow.configuration import conf

    return urlsplit(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")


class _LazyApp:
    """An ASGI app that builds the real FastAPI app on its first call (in the api-server only)."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if self._app is None:
            from airloop_ui_app import create_app

            self._app = create_app()
        if scope["type"] == "lifespan":  # Airflow enters lifespans of mounted FastAPI apps only: none needed
            return
        await self._app(scope, receive, send)


# -- extra links on task instances ---------------------------------------------------------------------


def _link(ti_key: Any, page: str) -> str:
    from urllib.parse import quote

    return (
        f"{_root_path()}{URL_PREFIX}/links/{page}?dag_id={quote(ti_key.dag_id, safe='')}"
        f"&run_id={quote(ti_key.run_id, safe='')}&task_id={quote(ti_key.task_id, safe='')}"
    )


class ModelRunLink(BaseOperatorLink):
    """``train_model``'s ``train`` and ``evaluate``: the version (and its MLflow run) the run registered."""

    name = "Airloop: model version"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        if ti_key.dag_id == "train_model" and ti_key.task_id in ("train", "evaluate", "promote"):
            return _link(ti_key, "model")
        return ""


class DriftReportLink(BaseOperatorLink):
    """``drift_monitor``'s ``check_drift``: the HTML report of the window the run checked."""

    name = "Airloop: drift report"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        if ti_key.dag_id == "drift_monitor" and ti_key.task_id == "check_drift":
            return _link(ti_key, "drift")
        return ""


class QuarantineReportLink(BaseOperatorLink):
    """``ingest_validate``'s ``check_quarantine`` when it failed: the quarantine report(s) of its days."""

    name = "Airloop: quarantine report"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        if ti_key.dag_id != "ingest_validate" or ti_key.task_id != "check_quarantine":
            return ""
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            state = session.scalar(
                select(TaskInstance.state).where(
                    TaskInstance.dag_id == ti_key.dag_id,
                    TaskInstance.run_id == ti_key.run_id,
                    TaskInstance.task_id == ti_key.task_id,
                    TaskInstance.map_index == ti_key.map_index,
                )
            )
        return _link(ti_key, "quarantine") if str(state) in ("failed", "TaskInstanceState.FAILED") else ""


class AirloopUIPlugin(AirflowPlugin):
    """Listed on Admin -> Plugins and by ``airflow plugins``."""

    name = "airloop"
    fastapi_apps = [{"app": _LazyApp(), "url_prefix": URL_PREFIX, "name": "Airloop console"}]
    external_views = [
        {
            "name": "Airloop",
            "href": f"{_root_path()}{URL_PREFIX}/",
            "url_route": "airloop",
            "destination": "nav",
        }
    ]
    global_operator_extra_links = [ModelRunLink(), DriftReportLink(), QuarantineReportLink()]
