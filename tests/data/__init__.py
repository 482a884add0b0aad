"""Tests of runner/data/, one file per module."""
