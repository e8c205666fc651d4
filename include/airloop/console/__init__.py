"""The operations console's read model and pages: what the Airflow UI's Airloop view shows.

``views`` reads the registry (MLflow), the lake (validated/quarantine zones, drift checks, live metrics) and
the feature store into typed, JSON-able records; ``pages`` renders them as self-contained HTML (no script,
no network: inline CSS and SVG); ``plot`` draws the SVG charts. No Airflow here: the plugin
(``plugins/airloop_ui_app.py``) adds sign-in, routing and actions through Airflow's REST API.
"""
