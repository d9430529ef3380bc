"""The deploy targets run against a real moto server (see tests/infra/moto.py)."""

from infra.moto import aws, moto_server  # noqa: F401 - fixtures
