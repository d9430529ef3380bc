"""Modules the torch tests save and serve.

A class from a ``.py`` file beside the notebook is the usual case for the torch flavor: ``shipyard.save`` pickles
it by value, because the server will not have that file. Keeping it out of the test module also keeps the tests
independent of how pytest imports test modules.
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
