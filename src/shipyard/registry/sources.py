"""What ``shipyard register`` records: a :class:`NewVersion` from a bundle folder or a training run's record,
with the evaluation metrics of ``--metrics eval.json``.

``--metrics`` takes a flat ``{"name": number}`` document, or SageMaker's model quality statistics
(``{"version": 0.0, "multiclass_classification_metrics": {"accuracy": {"value": 0.97, "standard_deviation": …},
…}}``: every metric with a numeric ``value`` is taken, by its name). Without it, a run's final metrics are the
version's metrics.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import orjson

from shipyard.bundle import Bundle
from shipyard.codecs import CODECS, DECODERS
from shipyard.errors import BundleError, RegistryError
from shipyard.experiments.record import RUN_PREFIX, RunStore, TrainRun
from shipyard.registry.model import NewVersion, RunLink, check_group_name
from shipyard.settings import Settings

__all__ = ["by_digest", "new_version", "read_metrics", "run_bundle"]

DEFAULT_INSTANCE_TYPES = ("ml.m5.large",)


def read_metrics(data: bytes, source: str) -> dict[str, float]:
    """The metrics of an evaluation file (see the module's docstring); a RegistryError naming ``source``."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise RegistryError(f"--metrics {source}: not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise RegistryError(f"--metrics {source}: expected a JSON object of metric names and numbers")
    sections = {k: v for k, v in document.items() if k.endswith("_metrics") and isinstance(v, dict)}
    if sections:
        return {
            name: float(entry["value"])
            for section in sections.values()
            for name, entry in section.items()
            if isinstance(entry, dict) and isinstance(entry.get("value"), int | float)
        }
    bad = [k for k, v in document.items() if isinstance(v, bool) or not isinstance(v, int | float)]
    if bad:
        raise RegistryError(
            f'--metrics {source}: {", ".join(bad[:5])} not numbers; give {{"name": number, ...}} or SageMaker\'s '
            'model quality statistics ({"multiclass_classification_metrics": {"accuracy": {"value": 0.9}}})'
        )
    return {k: float(v) for k, v in document.items()}


def by_digest(image: str | None, digest: str | None) -> str | None:
    """``repo:tag`` and ``sha256:…`` → ``repo@sha256:…`` (the image pinned); the image as it is otherwise."""
    if not image or not digest or "@" in image:
        return image
    last = image.rsplit("/", 1)
    if ":" in last[-1]:
        last[-1] = last[-1].rsplit(":", 1)[0]
    return "/".join(last) + "@" + digest


def run_bundle(run: TrainRun) -> Path:
    """The Shipyard bundle a run produced; a RegistryError saying what to do when it produced none."""
    if run.bundle_path and Path(run.bundle_path).is_dir():
        return Path(run.bundle_path)
    artifact = f" (its model is {run.model_artifact})" if run.model_artifact else ""
    raise RegistryError(
        f"the run {run.name} has no Shipyard bundle{artifact}: its script did not call shipyard.save(model, "
        f"SM_MODEL_DIR). Train it again with --handler inference.py (the artifact is wrapped with that script), "
        f"or pack the model yourself and register or deploy the bundle folder"
    )


def _from_run(run: TrainRun, group: str) -> NewVersion:
    return NewVersion(
        group=group,
        source=RUN_PREFIX + run.name,
        bundle_path=str(run_bundle(run).absolute()),
        image=by_digest(run.image, run.image_digest),
        image_digest=run.image_digest,
        metrics=run.final_metrics,
        metrics_source=RUN_PREFIX + run.name if run.metrics else None,
        hyperparameters={k: str(v) for k, v in run.hyperparameters.items()},
        data={c.name: c.version for c in run.channels},
        data_uris={c.name: c.uri for c in run.channels},
        code=asdict(run.code) if run.code else None,
        run=RunLink(run.name, run.experiment, run.tracking_uri, run.tracking_run_id, run.job_arn),
    )


def _from_bundle(path: str, group: str) -> NewVersion:
    folder = Path(path)
    if not folder.is_dir():
        raise RegistryError(
            f"{path} is not a bundle folder (nor run:NAME): register a folder `shipyard.save` wrote, or a run"
        )
    try:
        Bundle.open(folder)
    except BundleError as exc:
        raise RegistryError(f"{path} is not a Shipyard bundle: {exc}") from None
    return NewVersion(group=group, source=path, bundle_path=str(folder.absolute()))


def new_version(
    source: str,
    group: str,
    *,
    settings: Settings,
    metrics: Path | None = None,
    description: str | None = None,
    image: str | None = None,
    instance_types: list[str] | None = None,
    metadata: dict[str, str] | None = None,
) -> NewVersion:
    """What ``register SOURCE --group GROUP`` records (``SOURCE``: a bundle folder or ``run:NAME``)."""
    check_group_name(group)
    new = (
        _from_run(RunStore(settings).load(source), group)
        if source.startswith(RUN_PREFIX)
        else _from_bundle(source, group)
    )
    if metrics is not None:
        try:
            data = metrics.read_bytes()
        except OSError as exc:
            raise RegistryError(f"--metrics {metrics}: cannot be read ({exc.strerror})") from None
        new.metrics, new.metrics_source = read_metrics(data, str(metrics)), str(metrics.absolute())
    new.description = description
    new.image = image or new.image
    new.content_types, new.response_types = sorted(DECODERS), sorted(CODECS)
    types = list(instance_types or DEFAULT_INSTANCE_TYPES)
    new.realtime_instance_types, new.transform_instance_types = types, types
    new.customer_metadata = dict(metadata or {})
    return new
