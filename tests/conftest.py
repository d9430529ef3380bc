"""Shared fixtures: a trained digits bundle, a running server on a free port."""
