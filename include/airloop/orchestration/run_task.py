"""Run one task body of ``airloop.orchestration.tasks`` in a container (the DockerOperator runner).

``airloop-task <body>`` (``python -m airloop.orchestration.run_task <body>``) reads the body's keyword
arguments as JSON from ``AIRLOOP_TASK_KWARGS``, calls it with the settings of this environment (the same
``AIRLOOP_*`` variables the worker has), logs to stderr and prints the JSON result as the last
``AIRLOOP_RESULT`` line on stdout, which the operator turns into the task's XCom. The exit status carries
the Airflow outcome: 0 success, ``EXIT_SKIP`` skipped, ``EXIT_FAIL`` failed without retry
(``AirflowFailException``), anything else failed (retried).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

RESULT_PREFIX = "AIRLOOP_RESULT "
EXIT_SKIP = 99
EXIT_FAIL = 98

logger = logging.getLogger("airloop.run_task")


def run(body: str, kwargs: dict[str, Any]) -> Any:
    from airloop.orchestration import tasks

    function = getattr(tasks, body, None)
    if function is None or body.startswith("_") or not callable(function):
        raise SystemExit(f"airloop-task: no task body {body!r} in airloop.orchestration.tasks")
    return function(**kwargs)


def main(argv: list[str]) -> int:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if len(argv) != 1:
        print(
            "usage: airloop-task <body>   (keyword arguments as JSON in AIRLOOP_TASK_KWARGS)", file=sys.stderr
        )
        return 2
    kwargs = json.loads(os.environ.get("AIRLOOP_TASK_KWARGS") or "{}")
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    try:
        result = run(argv[0], kwargs)
    except AirflowSkipException as exc:
        logger.info("skipped: %s", exc)
        return EXIT_SKIP
    except AirflowFailException as exc:
        logger.error("failed (no retry): %s", exc)
        return EXIT_FAIL
    logging.shutdown()
    sys.stdout.write(RESULT_PREFIX + json.dumps(result, default=str) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
