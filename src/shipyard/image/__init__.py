"""Container images: build a SageMaker-ready image from a bundle, push it, verify it keeps the contract.

Infrastructure layer: the serving layer never imports this package (the image stays small).

    >>> from shipyard.image import BuildOptions, build, verify     # doctest: +SKIP
    >>> result = build("bundle/", BuildOptions(tag="digits:1"))     # doctest: +SKIP
    >>> report = verify(result.image, bundle="bundle/")             # doctest: +SKIP
    >>> report.passed                                               # doctest: +SKIP
    True
"""

from __future__ import annotations

from shipyard.image.build import DEFAULT_BASE, BuildEvent, BuildOptions, BuildResult, build, build_training, push
from shipyard.image.containerfile import ImageSpec, render
from shipyard.image.engine import Engine, ImageInfo, detect

__all__ = [
    "DEFAULT_BASE",
    "BuildEvent",
    "BuildOptions",
    "BuildResult",
    "Engine",
    "ImageInfo",
    "ImageSpec",
    "build",
    "build_training",
    "detect",
    "push",
    "render",
]
