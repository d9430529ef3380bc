"""A version's provenance and history as SageMaker ``CustomerMetadataProperties``, and back.

botocore's service model bounds the map: at most 50 entries; a key 1-128 and a value 1-256 characters, both of
letters, digits, spaces and ``_.:/=+-@`` only (``CustomerMetadataKey``/``CustomerMetadataValue``:
``[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]``). So every text is escaped (any other character, and ``@`` itself, becomes
``@HH`` or ``@UHHHHHH``), items in a list are ``name=value`` pairs separated by spaces (a space or ``=`` inside
one is escaped too), and a value over 256 characters continues in ``KEY+2``, ``KEY+3``...

    shipyard:source    run:digits-7          shipyard:code      commit=ab12… dirty=false source=sha256:…
    shipyard:run       digits-7              shipyard:data      train=sha256:… validation=sha256:…
    shipyard:hp        epochs=10 lr=0.1      shipyard:history:0001   2026-12-02T16:40:00+00:00 deploy digits-prod local

When the map would pass 50 entries the oldest history entries are left out (``shipyard:history-dropped`` counts
them); the local backend keeps every one.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from shipyard.registry.model import HistoryEntry, ModelVersion, RunLink

__all__ = ["MAX_ENTRIES", "MAX_VALUE", "allowed", "decode", "encode", "escape", "unescape"]

MAX_ENTRIES, MAX_KEY, MAX_VALUE = 50, 128, 256
PREFIX = "shipyard:"
HISTORY = f"{PREFIX}history:"
DROPPED = f"{PREFIX}history-dropped"
_PUNCTUATION = set("_.:/=+-@")
_ESCAPED = re.compile(r"@U([0-9A-F]{6})|@([0-9A-F]{2})")
_SCALARS = {
    "source": "source",
    "bundle": "bundle_path",
    "metrics-source": "metrics_source",
    "image-digest": "image_digest",
    "model-sha256": "model_sha256",
}
_RUN = {"run": "name", "experiment": "experiment", "tracking-uri": "tracking_uri",
        "tracking-run-id": "tracking_run_id", "job-arn": "job_arn"}  # fmt: skip


def allowed(char: str) -> bool:
    """Whether SageMaker takes ``char`` in a metadata key or value (a letter, a number, a space, ``_.:/=+-@``)."""
    category = unicodedata.category(char)
    return category[0] in "LNZ" or (char in _PUNCTUATION and char != "@")


def escape(text: str, also: str = "") -> str:
    out = []
    for char in text:
        if allowed(char) and char not in also:
            out.append(char)
        else:
            code = ord(char)
            out.append(f"@{code:02X}" if code < 256 else f"@U{code:06X}")
    return "".join(out)


def unescape(text: str) -> str:
    return _ESCAPED.sub(lambda m: chr(int(m.group(1) or m.group(2), 16)), text)


def _pairs(values: dict[str, Any]) -> str:
    return " ".join(f"{escape(str(k), ' =')}={escape(str(v), ' =')}" for k, v in values.items())


def _unpairs(text: str) -> dict[str, str]:
    pairs = (item.split("=", 1) for item in text.split(" ") if "=" in item)
    return {unescape(k): unescape(v) for k, v in pairs}


def _tokens(text: str) -> list[str]:
    """``text`` (escaped) as characters and whole escapes: where it may be cut."""
    return re.findall(r"@U[0-9A-F]{6}|@[0-9A-F]{2}|.", text, flags=re.DOTALL)


def _cut(text: str, limit: int = MAX_VALUE) -> str:
    """``text`` (escaped) to at most ``limit`` characters, never inside an escape."""
    out = ""
    for token in _tokens(text):
        if len(out) + len(token) > limit:
            break
        out += token
    return out


def _put(props: dict[str, str], key: str, text: str) -> None:
    """``text`` (escaped) under ``key``, continued in ``KEY+2``... past 256 characters (an escape is never cut)."""
    chunks, current = [], ""
    for token in _tokens(text):
        if len(current) + len(token) > MAX_VALUE:
            chunks.append(current)
            current = ""
        current += token
    chunks.append(current)
    for index, chunk in enumerate(chunks, start=1):
        if chunk:
            props[key if index == 1 else f"{key}+{index}"] = chunk


def _history(entry: HistoryEntry) -> str:
    parts = [entry.at, entry.action, entry.deployment, entry.target] + ([entry.detail] if entry.detail else [])
    return " ".join(escape(part, " ") for part in parts)


def encode(version: ModelVersion) -> dict[str, str]:
    """The version's CustomerMetadataProperties (within SageMaker's limits; see the module's docstring)."""
    props: dict[str, str] = {key: value for key, value in version.customer_metadata.items()}
    for key, attribute in _SCALARS.items():
        if value := getattr(version, attribute):
            _put(props, PREFIX + key, escape(str(value)))
    if version.run:
        for key, attribute in _RUN.items():
            if value := getattr(version.run, attribute):
                _put(props, PREFIX + key, escape(str(value)))
    for key, values in (("hp", version.hyperparameters), ("data", version.data), ("data-uri", version.data_uris),
                        ("code", version.code or {})):  # fmt: skip
        if values:
            _put(props, PREFIX + key, _pairs(values))
    return _with_history(props, version.history, version.history_dropped)


def _with_history(props: dict[str, str], history: list[HistoryEntry], before: int) -> dict[str, str]:
    """The entries numbered from the first ever (``before`` were left out already), as many as fit."""
    room = MAX_ENTRIES - len(props) - 1  # one for the count of dropped entries
    kept = history[-room:] if room > 0 else []
    dropped = before + len(history) - len(kept)
    first = dropped + 1
    for number, entry in enumerate(kept, start=first):
        props[f"{HISTORY}{number:04d}"] = _cut(_history(entry))  # a long detail is shortened
    if dropped:
        props[DROPPED] = str(dropped)
    return props


def _joined(props: dict[str, str]) -> dict[str, str]:
    """Continued values (``KEY+2``...) joined back to their key."""
    joined: dict[str, str] = {}
    for key in sorted(props, key=lambda k: (k.rsplit("+", 1)[0], int(k.rsplit("+", 1)[1]) if _continued(k) else 1)):
        base = key.rsplit("+", 1)[0] if _continued(key) else key
        joined[base] = joined.get(base, "") + props[key]
    return joined


def _continued(key: str) -> bool:
    return key.startswith(PREFIX) and "+" in key and key.rsplit("+", 1)[1].isdigit()


def decode(props: dict[str, str]) -> dict[str, Any]:
    """The :class:`ModelVersion` fields that ``encode`` wrote (the user's own keys as ``customer_metadata``)."""
    joined = _joined(props)
    fields: dict[str, Any] = {"customer_metadata": {k: v for k, v in joined.items() if not k.startswith(PREFIX)}}
    for key, attribute in _SCALARS.items():
        if PREFIX + key in joined:
            fields[attribute] = unescape(joined[PREFIX + key])
    run = {attribute: unescape(joined[PREFIX + key]) for key, attribute in _RUN.items() if PREFIX + key in joined}
    fields["run"] = RunLink(**run) if "name" in run else None
    for key, attribute in (("hp", "hyperparameters"), ("data", "data"), ("data-uri", "data_uris")):
        fields[attribute] = _unpairs(joined.get(PREFIX + key, ""))
    code = _unpairs(joined.get(PREFIX + "code", ""))
    fields["code"] = _typed_code(code) if code else None
    entries = sorted(k for k in joined if k.startswith(HISTORY))
    fields["history"] = [_entry(joined[k]) for k in entries]
    fields["history_dropped"] = int(joined.get(DROPPED, "0") or 0)
    return fields


def _typed_code(code: dict[str, str]) -> dict[str, Any]:
    typed: dict[str, Any] = {k: (None if v == "None" else v) for k, v in code.items()}
    if "dirty" in typed:
        typed["dirty"] = typed["dirty"] == "True"
    return typed


def _entry(text: str) -> HistoryEntry:
    parts = [unescape(part) for part in text.split(" ")]
    at, action, deployment, target = [*parts, "", "", "", ""][:4]
    return HistoryEntry(at, action, deployment, target, parts[4] if len(parts) > 4 else None)
