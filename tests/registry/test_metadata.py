"""CustomerMetadataProperties as the registry writes them: any text round-trips, and what is written always fits
botocore's CustomerMetadataKey/Value shapes (their length limits and their own patterns, matched with ``regex``)."""

from __future__ import annotations

import botocore.session
import regex
from hypothesis import given
from hypothesis import strategies as st

from shipyard.registry import metadata
from shipyard.registry.model import HistoryEntry, ModelVersion, RunLink

SHAPES = botocore.session.get_session().get_service_model("sagemaker")
KEY = SHAPES.shape_for("CustomerMetadataKey").metadata
VALUE = SHAPES.shape_for("CustomerMetadataValue").metadata


def fits(props: dict[str, str]) -> None:
    assert 1 <= len(props) <= SHAPES.shape_for("CustomerMetadataMap").metadata["max"]
    for key, value in props.items():
        assert 1 <= len(key) <= KEY["max"] and regex.fullmatch(KEY["pattern"], key), key
        assert 1 <= len(value) <= VALUE["max"] and regex.fullmatch(VALUE["pattern"], value), value


@given(st.text(min_size=1, max_size=300))
def test_escape_round_trips_and_fits_the_pattern(text: str) -> None:
    escaped = metadata.escape(text)
    assert metadata.unescape(escaped) == text
    assert regex.fullmatch(VALUE["pattern"], escaped)


@given(
    st.dictionaries(st.text(min_size=1, max_size=40), st.text(max_size=120), max_size=12),
    st.text(min_size=1, max_size=700),
    st.lists(st.text(min_size=1, max_size=60), max_size=70),
)
def test_a_version_round_trips_within_sagemakers_limits(hp: dict[str, str], source: str, details: list[str]) -> None:
    version = ModelVersion(
        group="digits",
        source=source,
        bundle_path="/b",
        hyperparameters=hp,
        data={"train": "sha256:" + "1" * 64},
        code={"commit": None, "dirty": True, "diff_sha256": None, "source_sha256": "e" * 64},
        run=RunLink("digits-7", tracking_uri="sqlite:////tmp/a b/mlflow.db"),
        history=[HistoryEntry("2026-12-02T16:40:00+00:00", "deploy", "d", "local", d) for d in details],
    )
    props = metadata.encode(version)
    fits(props)
    back = metadata.decode(props)
    assert back["source"] == source and back["hyperparameters"] == {k: v for k, v in hp.items()}
    assert back["code"] == version.code and back["run"] == version.run
    kept = back["history"]
    assert back["history_dropped"] + len(kept) == len(details)
    for entry, detail in zip(kept, details[len(details) - len(kept) :], strict=True):
        assert detail.startswith(entry.detail or "")  # whole, or shortened to fit 256 characters
        assert entry.at == "2026-12-02T16:40:00+00:00" and entry.action == "deploy"
