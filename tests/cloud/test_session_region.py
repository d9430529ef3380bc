"""Which region an :class:`Aws` session takes when none is given."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.cloud import Aws
from shipyard.errors import SpecError


def _no_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))


def test_aws_region_is_read_though_boto3_ignores_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The no-region error says "set AWS_REGION": doing so must work (boto3 itself reads AWS_DEFAULT_REGION)."""
    _no_config(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert Aws().region == "eu-west-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-2")  # boto3's own setting wins, as before
    assert Aws().region == "us-east-2"
    assert Aws("ap-south-1").region == "ap-south-1"


def test_no_region_at_all_says_how_to_set_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _no_config(monkeypatch, tmp_path)
    with pytest.raises(SpecError, match="set AWS_REGION"):
        Aws()
