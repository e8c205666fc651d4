"""Drift monitoring: statistics against a model version's precomputed reference (``stats``, ``engine``), the
decision policy and the check of one live-traffic window (``monitor``), and its HTML report (``report``)."""
