"""Tests that pin single misses found on development data, written in the project's own words.

One file per stage; each test's docstring names the kind of failure it guards against.
"""
