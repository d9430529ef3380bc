"""Secrets in an image: its environment, its build history, and every file of every layer.

A file deleted in a later layer is still in the earlier one (and in the registry), so the scan reads the
layers as they are pushed (``docker save``), not the container's merged filesystem. Patterns catch what
leaks in practice: AWS access keys and secret keys, private keys, cloud and VCS tokens, credential files.

Installed packages carry their own test fixtures (``transformers`` ships a public Hugging Face token in
``testing_utils.py``). A match in a file that is byte-identical to what its wheel installed — the sha256
in the package's ``*.dist-info/RECORD``, in the same layer — is the package's published content, not a
secret of the user's, and is reported apart; the same file with other bytes is a finding like any other.
"""

from __future__ import annotations

import base64
import hashlib
import re
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import IO

__all__ = ["Finding", "LayerScan", "scan_env", "scan_layers", "scan_text"]

_MAX_FILE = 2 * 1024 * 1024  # text files larger than this are data, not configuration
_PATTERNS = [
    ("AWS access key id", re.compile(rb"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    (
        "AWS secret access key",
        re.compile(rb"(?i)aws.{0,20}?(?:secret|private).{0,20}?['\"=:\s]\s*['\"]?[A-Za-z0-9/+]{40}\b"),
    ),
    ("private key", re.compile(rb"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----")),
    ("GitHub token", re.compile(rb"\bgh[pousr]_[A-Za-z0-9]{36,}\b")),
    ("Slack token", re.compile(rb"\bxox[abpors]-[A-Za-z0-9-]{10,}\b")),
    ("Hugging Face token", re.compile(rb"\bhf_[A-Za-z0-9]{34,}\b")),
]
_SECRET_FILES = re.compile(
    r"(^|/)(\.aws/credentials|\.docker/config\.json|\.netrc|\.git-credentials|\.pypirc|id_rsa|id_ecdsa|id_ed25519"
    r"|\.env)$"
)
_SECRET_ENV = re.compile(
    r"(?i)(^AWS_(SECRET_ACCESS_KEY|ACCESS_KEY_ID|SESSION_TOKEN)$|SECRET|PASSWORD|PASSWD|TOKEN|API_?KEY)"
)


@dataclass(frozen=True)
class Finding:
    where: str  # "env NAME", "history", "layer 3: path"
    what: str


def scan_text(data: bytes, where: str) -> list[Finding]:
    return [Finding(where, name) for name, pattern in _PATTERNS if pattern.search(data)]


def scan_env(env: Mapping[str, str]) -> list[Finding]:
    """Variables named like secrets that hold a value, and values that look like keys whatever their name."""
    findings = []
    for name, value in sorted(env.items()):
        if value and _SECRET_ENV.search(name):
            findings.append(Finding(f"env {name}", "a secret-like variable with a value"))
        else:
            findings += scan_text(value.encode(), f"env {name}")
    return findings


def scan_history(commands: Iterable[str]) -> list[Finding]:
    findings = []
    for index, command in enumerate(commands):
        findings += scan_text(command.encode(), f"history step {index}")
    return findings


@dataclass
class LayerScan:
    findings: list[Finding]
    files: int  # files read
    packaged: list[Finding]  # matches in files identical to what an installed wheel put there


def scan_layers(stream: IO[bytes]) -> LayerScan:
    """Scan a ``docker save`` archive read as a stream, file by file, layer by layer."""
    result = LayerScan([], 0, [])
    layer = 0
    with tarfile.open(fileobj=stream, mode="r|") as outer:
        for member in outer:
            if not member.isfile() or not _is_layer(member.name):
                continue
            layer += 1
            handle = outer.extractfile(member)
            if handle is None:
                continue
            try:
                inner = tarfile.open(fileobj=handle, mode="r|*")  # noqa: SIM115 - closed by the with below
            except tarfile.ReadError:
                continue  # a config or manifest blob, not a layer
            with inner:
                _scan_layer(inner, layer, result)
    return result


def _scan_layer(layer_tar: tarfile.TarFile, layer: int, result: LayerScan) -> None:
    suspects: list[tuple[str, str, Finding]] = []  # (path, its sha256 as RECORD writes it, finding)
    recorded: dict[str, str] = {}  # path in the layer → the sha256 its package's RECORD lists
    for entry in layer_tar:
        if not entry.isfile():
            continue
        result.files += 1
        path = entry.name.removeprefix("./").lstrip("/")
        where = f"layer {layer}: /{path}"
        if _SECRET_FILES.search(entry.name) and entry.size > 0:
            result.findings.append(Finding(where, "a credentials file"))
            continue
        is_record = path.endswith(".dist-info/RECORD")
        if entry.size > _MAX_FILE and not is_record:
            continue
        data = layer_tar.extractfile(entry)
        if data is None:
            continue
        content = data.read()
        if is_record:
            recorded.update(_record_hashes(path, content))
            continue
        if b"\0" in content[:4096]:
            continue  # binary: compiled code, arrays, pickles
        for finding in scan_text(content, where):
            suspects.append((path, _record_digest(content), finding))
    for path, digest, finding in suspects:  # a RECORD may come after the files it lists
        (result.packaged if recorded.get(path) == digest else result.findings).append(finding)


def _record_hashes(record_path: str, content: bytes) -> dict[str, str]:
    """``path,sha256=<urlsafe base64>,size`` lines of a RECORD, paths made relative to the layer's root."""
    site = record_path.rsplit("/", 2)[0]  # the directory holding the .dist-info directory
    hashes = {}
    for line in content.decode("utf-8", "replace").splitlines():
        name, _, rest = line.partition(",")
        digest = rest.partition(",")[0]
        if digest.startswith("sha256="):
            hashes[f"{site}/{name}"] = digest.removeprefix("sha256=")
    return hashes


def _record_digest(content: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()


def _is_layer(name: str) -> bool:
    # docker-archive: <id>/layer.tar (Docker) or <id>.tar (Podman); OCI layout: blobs/sha256/<digest>
    return name.endswith("layer.tar") or (name.endswith(".tar") and "/" not in name) or name.startswith("blobs/")
