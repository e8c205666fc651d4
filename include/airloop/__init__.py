"""Airloop: closed-loop MLOps on Apache Airflow.

The domain library. Nothing in here imports Airflow except ``airloop.orchestration``, so the same code runs
in an Airflow task, a container or a BentoML service.
"""

__version__ = "0.1.0"
