"""Inference shared by the entry points (being split into one module a job)."""

from runner.inference.predictors import *  # noqa: F401,F403
