"""Modules the torch tests save and serve.

They live here, not in a test module: pytest rewrites the assertions of test modules, and the rewritten module's
code no longer matches its source, so ``torch.jit.script`` (which reads a class's source through ``inspect``)
fails on a class defined in one (``OSError: could not get source code``). A plain module is imported as written.
For the torch flavor this is also the usual case: a class from a ``.py`` file beside the notebook, which
``shipyard.save`` pickles by value because the server will not have that file.
"""

from __future__ import annotations

import torch


class Scorer(torch.nn.Module):
    """A small MLP with a persistent and a non-persistent buffer (the latter is not in the state dict)."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3))
        self.register_buffer("scale", torch.full((3,), 2.0))
        self.register_buffer("offset", torch.arange(3.0), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.layers(x) * self.scale + self.offset, dim=1)
