"""An example zcnas search space: a small ResNet whose stage widths and depths vary.

Encoding ``WxD-WxD-WxD``: for each of three stages its width W (8, 16, 24, 32 channels)
and depth D (1 or 2 basic blocks); stages 2 and 3 start with a stride-2 block. 8**3 = 512
architectures. Per-layer statistics line up on slots named by position
(``stages.{s}.blocks.{b}.conv1`` ...): a slot means "the first conv of block b of stage s"
whatever its width, and a depth-1 stage leaves its second block's slots empty.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import torch
from torch import nn

from zcnas.errors import ArchError, BenchmarkError
from zcnas.spaces import SearchSpace

WIDTHS = (8, 16, 24, 32)
DEPTHS = (1, 2)
_STAGE = re.compile(r"^(\d+)x(\d+)$")


class Block(nn.Module):
    """ResNet basic block: conv-BN-ReLU-conv-BN plus a (1x1 conv) shortcut, then ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = None
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + (x if self.shortcut is None else self.shortcut(x)))


class WidthNet(nn.Module):
    def __init__(self, stages, num_classes: int, stem_channels: int = 16):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, stem_channels, 3, padding=1, bias=False), nn.BatchNorm2d(stem_channels), nn.ReLU())
        layers, c_in = [], stem_channels
        for s, (width, depth) in enumerate(stages):
            blocks = [Block(c_in if b == 0 else width, width, 2 if (s > 0 and b == 0) else 1) for b in range(depth)]
            layers.append(nn.Module())
            layers[-1].blocks = nn.ModuleList(blocks)
            c_in = width
        self.stages = nn.ModuleList(layers)
        self.classifier = nn.Linear(c_in, num_classes)

    def cell_features(self, x):
        feats, h = [], self.stem(x)
        for stage in self.stages:
            for block in stage.blocks:
                h = block(h)
            feats.append(h)
        return feats

    def forward_pre_gap(self, x):
        return self.cell_features(x)[-1]

    def forward(self, x):
        return self.classifier(self.forward_pre_gap(x).mean(dim=(2, 3)))


class WidthSpace(SearchSpace):
    name = "widths"
    description = "example plugin: 3-stage ResNet, widths 8-32 and depths 1-2 per stage (512 architectures)"
    example = "16x1-24x2-32x1"
    input_kind = "image"
    default_options = {"stem_channels": 16}

    def parse(self, encoding) -> tuple[tuple[int, int], ...]:
        if not isinstance(encoding, str):
            raise ArchError(f"Architecture {encoding!r} is not a string like {self.example}.")
        parts = encoding.strip().split("-")
        stages = []
        for part in parts:
            match = _STAGE.match(part)
            if not match or int(match[1]) not in WIDTHS or int(match[2]) not in DEPTHS:
                raise ArchError(
                    f"Architecture {encoding!r}: stage {part!r} must be WIDTHxDEPTH with width in "
                    f"{WIDTHS} and depth in {DEPTHS}, like {self.example}."
                )
            stages.append((int(match[1]), int(match[2])))
        if len(stages) != 3:
            raise ArchError(f"Architecture {encoding!r} has {len(stages)} stages, not 3, like {self.example}.")
        return tuple(stages)

    def to_string(self, stages) -> str:
        return "-".join(f"{w}x{d}" for w, d in stages)

    def all_encodings(self) -> list[str]:
        stage = list(itertools.product(WIDTHS, DEPTHS))
        return [self.to_string(s) for s in itertools.product(stage, repeat=3)]

    def sample(self, n, rng):
        every = self.all_encodings()
        if not 1 <= n <= len(every):
            raise ArchError(f"Cannot sample {n} architectures from the widths space; ask for 1..{len(every)}.")
        return [every[i] for i in rng.choice(len(every), size=n, replace=False)]

    def build(self, encoding, num_classes: int = 10, stem_channels: int = 16, **options):
        if options:
            raise ArchError(f"The widths space has no option {sorted(options)[0]!r}; it takes stem_channels.")
        return WidthNet(self.parse(encoding), num_classes, stem_channels)

    def check_input_shape(self, shape) -> None:
        shape = tuple(shape)
        if len(shape) != 4 or shape[1] != 3 or min(shape[2:]) < 4:
            raise BenchmarkError(f"Probe batch shape {shape} is not (N, 3, H, W) with H, W >= 4, as the widths space needs.")

    def layer_slots(self, **options) -> list[str]:
        slots = ["stem.0"]
        for s in range(3):
            for b in range(max(DEPTHS)):
                slots += [f"stages.{s}.blocks.{b}.{name}" for name in ("conv1", "conv2", "shortcut")]
        return slots + ["classifier"]
