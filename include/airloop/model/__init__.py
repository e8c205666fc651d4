"""The tabular model: preprocessing, the PyTorch network, training, metrics, the classical baseline,
the MLflow pyfunc wrapper, the drift reference profile, behaviour tests and the promotion gate.

Torch and scikit-learn are imported inside these modules only: never from a DAG file.
"""
