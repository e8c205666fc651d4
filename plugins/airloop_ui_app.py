"""The Airloop console's FastAPI app, mounted by Airflow's api-server at ``/airloop`` (``airloop_ui.py``).

Pages (HTML, rendered by ``airloop.console.pages``): Models, Drift, Data, Live, Actions; report files; JSON
twins under ``/api/``; the targets of the task extra links under ``/links/``.

Security (Airflow does not protect plugin apps):

- Every endpoint resolves the caller with Airflow's own ``airflow.api_fastapi.core_api.security.get_user``:
  an ``Authorization: Bearer <JWT>`` header wins, else the UI session's ``_token`` cookie (a JWT the auth
  manager issued and validates, revocation included). No identity: 401 (``WWW-Authenticate: Bearer``), or,
  for a browser asking for a page, a redirect to the auth manager's login URL that comes back here.
- Actions (trigger ``train_model`` / ``rollback_model``, answer a HITL approval) are calls to Airflow's public
  REST API (``/api/v2``) with the caller's own token, so Airflow's authorization decides; nothing is done
  with privileges of the plugin. POSTs from another site are refused (``Origin`` / ``Sec-Fetch-Site``): the
  session cookie must not make a cross-site form an action.
- Report files are served only from the lake's drift-check and quarantine folders, by names that must
  resolve inside them (``airloop.console.views.contained``: no ``..``, no absolute paths, no links out).

Deliberately no ``from __future__ import annotations``: FastAPI reads the route functions' annotations,
which name classes imported inside ``create_app`` (nothing here is imported before the first request).
"""

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

logger = logging.getLogger(__name__)

TOKEN_COOKIE = "_token"  # airflow.api_fastapi.auth.managers.base_auth_manager.COOKIE_NAME_JWT_TOKEN
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"


@dataclass(frozen=True)
class Identity:
    user: Any
    token: str
    """The caller's JWT (bearer or session cookie): actions pass it on to Airflow's REST API."""

    @property
    def name(self) -> str:
        return str(getattr(self.user, "get_name", lambda: self.user)())


class NotSignedInError(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


async def identity(request: Any) -> Identity:
    """The signed-in Airflow user of this request (Airflow's own resolution), or ``NotSignedInError``."""
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi import HTTPException
    from fastapi.security import HTTPAuthorizationCredentials

    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    bearer = (
        HTTPAuthorizationCredentials(scheme="Bearer", credentials=credentials.strip())
        if scheme.lower() == "bearer" and credentials.strip()
        else None
    )
    try:
        user = await get_user(request, None, bearer)
    except HTTPException as err:  # 401 no/expired token, 403 invalid token: no identity either way
        raise NotSignedInError(str(err.detail)) from err
    token = bearer.credentials if bearer else request.cookies.get(TOKEN_COOKIE, "")
    return Identity(user, token)


def airflow_api_url() -> str:
    """Where this api-server answers its own REST API: ``AIRLOOP_AIRFLOW_API_URL`` if set, else loopback on
    ``[api] port`` (the bind address unless it is a wildcard) under the root path of ``[api] base_url`` -
    the public ``base_url`` itself may be a proxy this process cannot reach."""
    import os

    from airflow.configuration import conf

    if os.environ.get("AIRLOOP_AIRFLOW_API_URL"):
        return os.environ["AIRLOOP_AIRFLOW_API_URL"].rstrip("/")
    host = conf.get("api", "host", fallback="127.0.0.1") or "127.0.0.1"
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    scheme = "https" if conf.get("api", "ssl_cert", fallback="") else "http"
    root = urlsplit(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")
    return f"{scheme}://{host}:{conf.getint('api', 'port', fallback=8080)}{root}"


def create_app(api_url: str | None = None, transport: Any = None) -> Any:
    """The console app. ``api_url``/``transport`` (an httpx transport) point the actions elsewhere (tests)."""
    from datetime import date, timedelta

    import httpx
    from fastapi import FastAPI, Request
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

    from airloop.console import pages, views
    from airloop.resources import load_resources

    app = FastAPI(title="Airloop console", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(NotSignedInError)
    async def not_signed_in(request: Request, exc: NotSignedInError) -> Response:
        wants_page = request.method == "GET" and "text/html" in request.headers.get("accept", "")
        if wants_page and not request.url.path.startswith(f"{request.scope.get('root_path', '')}/api/"):
            from airflow.api_fastapi.app import get_auth_manager

            return RedirectResponse(
                get_auth_manager().get_url_login(next_url=str(request.url)), status_code=303
            )
        return JSONResponse(
            {"detail": f"Not authenticated: {exc.detail}"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    async def signed_in(request: Request) -> Identity:
        return await identity(request)

    def links(request: Request) -> pages.Links:
        import os

        base = request.scope.get("root_path", "").rstrip("/")  # e.g. /airloop (after Airflow's root path)
        airflow_root = base[: -len("/airloop")] if base.endswith("/airloop") else ""
        return pages.Links(
            base=base, airflow=airflow_root, mlflow=os.environ.get("AIRLOOP_MLFLOW_UI_URL") or None
        )

    def page(
        request: Request, who: Identity, title: str, tab: str, body: str, status: int = 200
    ) -> HTMLResponse:
        res = load_resources()
        html = pages.layout(title, tab, body, links(request), who.name, res.use_case.name)
        return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})

    def models_view() -> views.ModelsView:
        return views.models_view(load_resources().registry)

    # -- pages ------------------------------------------------------------------------------------------

    @app.get("/")
    async def index(request: Request) -> Response:
        await identity(request)
        return RedirectResponse(links(request).page("models"), status_code=303)

    @app.get("/models")
    def models(request: Request, who: Identity = _dep(signed_in)) -> HTMLResponse:
        return page(request, who, "Models", "models", pages.models_page(models_view(), links(request)))

    @app.get("/drift")
    def drift(request: Request, who: Identity = _dep(signed_in)) -> HTMLResponse:
        res = load_resources()
        body = pages.drift_page(views.drift_view(res.lake, res.use_case), links(request), models_view())
        return page(request, who, "Drift", "drift", body)

    @app.get("/data")
    def data(request: Request, who: Identity = _dep(signed_in)) -> HTMLResponse:
        res = load_resources()
        body = pages.data_page(views.data_view(res.settings, res.use_case, res.lake), links(request))
        return page(request, who, "Data", "data", body)

    @app.get("/live")
    def live(request: Request, who: Identity = _dep(signed_in)) -> HTMLResponse:
        res = load_resources()
        return page(request, who, "Live", "live", pages.live_page(views.live_view(res.lake), models_view()))

    # -- report files -----------------------------------------------------------------------------------

    @app.get("/reports/drift/{check_id:path}")
    def drift_report(check_id: str, who: Identity = _dep(signed_in)) -> Response:
        try:
            path = views.drift_report(load_resources().lake, check_id)
        except (ValueError, FileNotFoundError) as err:
            return JSONResponse({"detail": str(err)}, status_code=404)
        return FileResponse(path, media_type="text/html", headers={"Content-Security-Policy": REPORT_CSP})

    @app.get("/reports/quarantine/{ds:path}")
    def quarantine_report(request: Request, ds: str, who: Identity = _dep(signed_in)) -> Response:
        try:
            path = views.quarantine_report(load_resources().lake, ds)
        except (ValueError, FileNotFoundError) as err:
            return JSONResponse({"detail": str(err)}, status_code=404)
        body = pages.quarantine_report_page(ds, path.read_text(), links(request))
        return page(request, who, f"Quarantine {ds}", "data", body)

    # -- JSON twins -------------------------------------------------------------------------------------

    @app.get("/api/models")
    def api_models(who: Identity = _dep(signed_in)) -> JSONResponse:
        return JSONResponse(views.as_json(models_view()))

    @app.get("/api/drift")
    def api_drift(who: Identity = _dep(signed_in)) -> JSONResponse:
        res = load_resources()
        return JSONResponse(views.as_json(views.drift_view(res.lake, res.use_case)))

    @app.get("/api/data")
    def api_data(who: Identity = _dep(signed_in)) -> JSONResponse:
        res = load_resources()
        return JSONResponse(views.as_json(views.data_view(res.settings, res.use_case, res.lake)))

    @app.get("/api/live")
    def api_live(who: Identity = _dep(signed_in)) -> JSONResponse:
        return JSONResponse(views.as_json(views.live_view(load_resources().lake)))

    # -- extra-link targets -----------------------------------------------------------------------------

    @app.get("/links/{kind}")
    def link_target(
        request: Request, kind: str, dag_id: str, run_id: str, who: Identity = _dep(signed_in)
    ) -> Response:
        res, here = load_resources(), links(request)
        if kind == "model":
            made = views.version_for_run(models_view(), dag_id, run_id)
            anchor = f"#v{made.version}" if made else ""
            return RedirectResponse(here.page("models") + anchor, status_code=303)
        if kind == "drift":
            check = next(
                (c for c in views.drift_view(res.lake, res.use_case).checks if c.airflow_run_id == run_id),
                None,
            )
            if check is not None and check.has_report:
                return RedirectResponse(here.drift_report(check.id), status_code=303)
            return RedirectResponse(here.page("drift"), status_code=303)
        if kind == "quarantine":
            days = _run_days(dag_id, run_id, who)
            bad = [d for d in (days or []) if d in set(res.lake.quarantined_days())]
            if len(bad) == 1:
                return RedirectResponse(here.quarantine_report(bad[0]), status_code=303)
            return RedirectResponse(here.page("data"), status_code=303)
        return JSONResponse({"detail": f"unknown link {kind!r}"}, status_code=404)

    # -- actions ----------------------------------------------------------------------------------------

    def rest(who: Identity) -> httpx.Client:
        return httpx.Client(
            base_url=(api_url or airflow_api_url()) + "/api/v2",
            headers={"Authorization": f"Bearer {who.token}"},
            timeout=30.0,
            transport=transport,
        )

    def _run_days(dag_id: str, run_id: str, who: Identity) -> list[str] | None:
        """The days an ``ingest_validate`` run planned (its ``plan_days`` XCom, with the caller's rights)."""
        with rest(who) as client:
            run = f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"
            path = f"{run}/taskInstances/plan_days/xcomEntries/return_value"
            answer = client.get(path, params={"deserialize": True})
        if answer.status_code != 200:
            return None
        value = answer.json().get("value")
        if isinstance(value, str):
            import json

            value = json.loads(value)
        return [d for chunk in value or [] for d in chunk]

    def pending(who: Identity) -> tuple[list[pages.PendingApproval], str | None]:
        with rest(who) as client:
            answer = client.get("/dags/~/dagRuns/~/hitlDetails", params={"response_received": False})
        if answer.status_code != 200:
            return (
                [],
                f"pending approvals unavailable: Airflow answered {answer.status_code} {answer.text[:200]}",
            )
        out = []
        for item in answer.json().get("hitl_details", []):
            ti = item.get("task_instance") or {}
            out.append(
                pages.PendingApproval(
                    ti.get("dag_id", ""),
                    ti.get("dag_run_id", ""),
                    ti.get("task_id", ""),
                    int(ti.get("map_index", -1)),
                    item.get("subject", ""),
                    item.get("body"),
                    list(item.get("options", [])),
                )
            )
        return out, None

    def same_site(request: Request) -> bool:
        sender = request.headers.get("Origin")  # (headers are case-insensitive)
        if sender and sender != "null":
            own = f"{request.url.scheme}://{request.url.netloc}"
            if sender.rstrip("/") != own:
                return False
        return request.headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")

    async def form(request: Request) -> dict[str, str]:
        fields = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[-1] for k, v in fields.items()}

    def actions_page(request: Request, who: Identity, flash: Any, status: int = 200) -> HTMLResponse:
        found, error = pending(who)
        body = pages.actions_page(models_view(), links(request), found, error, flash, holdout_end())
        return page(request, who, "Actions", "actions", body, status)

    def holdout_end() -> str | None:
        days = load_resources().lake.validated_days()
        return (date.fromisoformat(days[-1]) + timedelta(days=1)).isoformat() if days else None

    @app.get("/actions")
    def actions(request: Request, who: Identity = _dep(signed_in)) -> HTMLResponse:
        q = request.query_params
        flash = None
        if q.get("done") in ("rollback_model", "train_model") and q.get("run"):
            flash = pages.Flash(
                True,
                f"{q['done']} run {q['run']} triggered"
                + (f" ({q['note']})" if q.get("note") in NOTES else ""),
            )
        elif q.get("done") == "approval" and q.get("option"):
            flash = pages.Flash(True, f"answered {q['option']!r}")
        return actions_page(request, who, flash)

    def refused(request: Request, who: Identity, what: str, answer: httpx.Response) -> HTMLResponse:
        detail = answer.text[:300]
        try:
            detail = str(answer.json().get("detail", detail))
        except ValueError:
            pass
        flash = pages.Flash(False, f"{what}: Airflow answered {answer.status_code}: {detail}")
        return actions_page(
            request, who, flash, status=answer.status_code if answer.status_code >= 400 else 502
        )

    def trigger(request: Request, who: Identity, dag_id: str, conf: dict[str, Any]) -> Response:
        note = ""
        with rest(who) as client:
            dag = client.get(f"/dags/{dag_id}")
            if dag.status_code != 200:
                return refused(request, who, f"reading {dag_id}", dag)
            if dag.json().get("is_paused"):
                unpaused = client.patch(f"/dags/{dag_id}", json={"is_paused": False})
                if unpaused.status_code != 200:
                    return refused(request, who, f"unpausing {dag_id}", unpaused)
                note = "unpaused"
            answer = client.post(f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})
        if answer.status_code not in (200, 201):
            return refused(request, who, f"triggering {dag_id}", answer)
        run_id = answer.json()["dag_run_id"]
        logger.info("%s triggered %s run %s: %s", who.name, dag_id, run_id, conf)
        target = links(request).page("actions", done=dag_id, run=run_id, **({"note": note} if note else {}))
        return RedirectResponse(target, status_code=303)

    @app.post("/actions/rollback")
    async def rollback(request: Request, who: Identity = _dep(signed_in)) -> Response:
        if not same_site(request):
            return JSONResponse({"detail": "cross-site request refused"}, status_code=403)
        reason = (await form(request)).get("reason", "").strip()
        if len(reason) < 3:
            return JSONResponse({"detail": "a reason of at least 3 characters is required"}, status_code=400)
        return await _in_thread(trigger, request, who, "rollback_model", {"reason": reason})

    @app.post("/actions/train")
    async def train(request: Request, who: Identity = _dep(signed_in)) -> Response:
        if not same_site(request):
            return JSONResponse({"detail": "cross-site request refused"}, status_code=403)
        fields = await form(request)
        reason = fields.get("reason", "").strip()
        if len(reason) < 3:
            return JSONResponse({"detail": "a reason of at least 3 characters is required"}, status_code=400)
        conf: dict[str, Any] = {
            "reason": f"console: {reason}",
            "require_approval": fields.get("require_approval") == "true",
        }
        end = fields.get("holdout_end") or holdout_end()
        if end:
            conf["holdout_end"] = date.fromisoformat(end).isoformat()
        return await _in_thread(trigger, request, who, "train_model", conf)

    @app.post("/actions/approval")
    async def approval(request: Request, who: Identity = _dep(signed_in)) -> Response:
        if not same_site(request):
            return JSONResponse({"detail": "cross-site request refused"}, status_code=403)
        f = await form(request)

        def answer() -> Response:
            path = (
                f"/dags/{quote(f['dag_id'], safe='')}/dagRuns/{quote(f['run_id'], safe='')}/taskInstances/"
                f"{quote(f['task_id'], safe='')}/{int(f.get('map_index', '-1'))}/hitlDetails"
            )
            with rest(who) as client:
                reply = client.patch(path, json={"chosen_options": [f["option"]]})
            if reply.status_code != 200:
                return refused(request, who, "answering the approval", reply)
            return RedirectResponse(
                links(request).page("actions", done="approval", option=f["option"]), status_code=303
            )

        return await _in_thread(answer)

    return app


NOTES = ("unpaused",)


def _dep(dependency: Any) -> Any:
    from fastapi import Depends

    return Depends(dependency)


async def _in_thread(fn: Any, *args: Any) -> Any:
    """Run a blocking call (store reads, REST calls to this same server) off the event loop."""
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)
