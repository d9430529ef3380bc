"""Images that break the contract make verify fail, naming the check that caught them.

Each is the digits image with one thing broken on top, built straight with Podman.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shipyard.image import BuildResult
from shipyard.image.verify import VerifyOptions, verify

pytestmark = pytest.mark.integration


def _failed(report: object) -> set[str]:
    return set(report.failed)  # type: ignore[attr-defined]


def test_no_serve_on_path_fails_serve(digits_image: BuildResult, derived_image: Callable[[str, str], str]) -> None:
    image = derived_image(
        "shipyard-test/broken:no-serve",
        f"FROM {digits_image.image}\nRUN rm /opt/shipyard/venv/bin/serve\nENTRYPOINT []\nCMD []\n",
    )
    report = verify(image, VerifyOptions(timeout=30, scan_layers=False))
    assert not report.passed
    assert _failed(report) == {"serve"}
    serve = next(c for c in report.checks if c.name == "serve")
    assert "did not start" in serve.detail and "not found" in serve.detail


def test_server_that_never_answers_ping_fails_ping(
    digits_image: BuildResult, derived_image: Callable[[str, str], str]
) -> None:
    # Listens on 8080 and accepts connections, but never answers: the classic "failed the ping health check".
    hang = "import socket, time\\ns = socket.socket()\\ns.bind(('0.0.0.0', 8080))\\ns.listen()\\ntime.sleep(3600)\\n"
    image = derived_image(
        "shipyard-test/broken:no-ping",
        f"FROM {digits_image.image}\n"
        f'RUN printf "{hang}" > /hang.py\n'
        'RUN printf "#!/bin/sh\\nexec python3 /hang.py\\n" > /opt/shipyard/venv/bin/serve\n',
    )
    report = verify(image, VerifyOptions(timeout=8, grace=5, scan_layers=False))
    assert _failed(report) == {"ping"}
    assert "within 8 s" in next(c.detail for c in report.checks if c.name == "ping")
    assert report.cold_start_s is None


def test_root_workers_and_leaked_keys_fail_non_root_and_secrets(
    digits_image: BuildResult, derived_image: Callable[[str, str], str]
) -> None:
    fake_key = "AKIA" + "TESTONLYNOTAREALKEY"[:16]
    image = derived_image(
        "shipyard-test/broken:root",
        f"FROM {digits_image.image}\n"
        "ENV SHIPYARD_RUN_AS=\n"  # no privilege drop: the workers stay root
        f"ENV AWS_SECRET_ACCESS_KEY=not-a-real-secret\n"
        f"RUN mkdir -p /root/.config && echo 'aws_access_key_id = {fake_key}' > /root/.config/keys.txt\n"
        "RUN rm /root/.config/keys.txt\n",  # deleted later, still in its layer
    )
    report = verify(image, VerifyOptions(timeout=90))
    assert _failed(report) == {"non-root", "secrets-env", "secrets-layers"}
    details = {c.name: c.detail for c in report.checks}
    assert "run as root" in details["non-root"]
    assert "AWS_SECRET_ACCESS_KEY" in details["secrets-env"]
    assert "/root/.config/keys.txt: AWS access key id" in details["secrets-layers"]
