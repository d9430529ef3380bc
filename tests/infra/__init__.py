"""Real infrastructure for tests: a Python base image made with debootstrap, a local OCI registry.

Started once per session by fixtures (see tests/image/conftest.py) and stopped by PID.
"""
