"""Tests of runner/training/, one file per module."""
