"""The code file MLflow logs beside every model version ("models from code"): the version carries only
this stub, the weights (``weights.pt``, a state dict) and JSON; the class comes from the installed
``airloop`` package, never from a pickle.

Not imported by the library (``mlflow.models.set_model`` is a side effect): ``training.py`` hands MLflow
its path, and MLflow's own tools (``mlflow.pyfunc.load_model``, ``mlflow models serve``) run it. Airloop's
consumers (``RegisteredModel``) do not run it at all: they build ``TabularModel`` from the installed
package and read the artifacts as data. Keep it this small: it is code stored in the registry."""

import mlflow.models

from airloop.model.pyfunc import TabularModel

mlflow.models.set_model(TabularModel())
