"""Networks small enough to compute a proxy's formula independently, and their probe data.

Shared by the formula tests (`test_proxies_formulas.py`, `test_proxies_spectral.py`,
`test_proxies_new_gradient.py`): import by name, `from tiny_nets import TinyConvNet, data, run`.
"""

from __future__ import annotations

import torch
from torch import nn

from zcnas.proxies import compute_proxies

NUM_CLASSES = 5


class TinyConvNet(nn.Module):
    """conv3x3 (no bias) -> BN -> ReLU -> conv1x1 (bias) -> ReLU -> GAP -> linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 3, 1, bias=True)
        self.relu2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(3, NUM_CLASSES)

    def forward_pre_gap(self, x):
        return self.relu2(self.conv2(self.relu1(self.bn(self.conv1(x)))))

    def forward(self, x):
        return self.fc(self.pool(self.forward_pre_gap(x)).flatten(1))


def tiny_net(seed=0) -> TinyConvNet:
    torch.manual_seed(seed)
    return TinyConvNet()


class TwoLayerLinear(nn.Module):
    """flatten -> linear -> ReLU -> linear, on (N, 3, 2, 2) inputs."""

    def __init__(self, hidden=5, out=NUM_CLASSES, bias=True):
        super().__init__()
        self.fc1 = nn.Linear(12, hidden, bias=bias)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden, out, bias=bias)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x.flatten(1))))


def data(shape=(6, 3, 8, 8), classes=NUM_CLASSES, seed=0, dtype=None):
    """Gaussian images of `shape` (torch's default dtype unless `dtype`), labels 0, 1, ... mod `classes`."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=generator, dtype=dtype)
    y = torch.tensor([i % classes for i in range(shape[0])])
    return x, y


def run(name, model, x, y=None, *, num_classes=NUM_CLASSES, seed=0):
    """One proxy's outcome on (x, y), asserted to have succeeded."""
    outcome = compute_proxies(model, x, y, [name], num_classes=num_classes, seed=seed)[name]
    assert outcome.ok, outcome.error
    return outcome


def weighted(model):
    """[(name, module)] of the conv/linear layers, in module order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
