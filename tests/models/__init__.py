"""Tests of runner/models/, one file per module."""
