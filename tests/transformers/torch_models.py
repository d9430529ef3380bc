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


class Branchy(torch.nn.Module):
    """Python control flow on the values: the ONNX tracer records the branch the trace input took."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.abs().max() > 10:  # a batch with a large value takes the other branch
            return self.linear(x) * 10.0
        return self.linear(x)


class Numpyish(torch.nn.Module):
    """A forward that leaves torch: the tracer folds the input into a constant."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import numpy as np

        return torch.from_numpy(np.tanh(x.numpy()))
