"""Tooling around the platform, not part of it: the unattended demo (``demo``), a local ``airflow standalone``
with a REST client (``airflow_runtime``), the prediction service as a local process plus a replay of
recorded events through it (``service_runner``), and the first-run state/secrets bootstrap (``bootstrap``,
also the compose stack's init job). The library (``airloop``) never imports this package."""
