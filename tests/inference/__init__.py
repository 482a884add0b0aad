"""Tests of runner/inference/, one file a module, and of the commands built on it."""
