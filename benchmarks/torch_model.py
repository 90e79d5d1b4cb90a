"""The `mnist_cnn` preset in PyTorch, with the same shapes and the same work per train step.

conv32(3x3, SAME)-relu-maxpool2-conv64(3x3, SAME)-relu-maxpool2-dense256-relu-dense10 on
uint8 images normalised inside the step; AdamW; the step also computes the global gradient
norm and the number of correct predictions, as the JAX step does. PyTorch is an optional
benchmark-only dependency (`pip install torch==2.13.0`, CPU wheel).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

MEAN, STD = 0.5, 0.25


@dataclasses.dataclass
class TorchStep:
    """A ready-to-run PyTorch train step on a resident synthetic batch."""

    run_once: Callable[[], Any]
    batch_size: int
    compile_sec: float

    def run(self, n: int = 1) -> None:
        for _ in range(n):
            self.run_once()


def build_torch_step(
    batch_size: int,
    input_shape: tuple[int, int, int] = (28, 28, 1),
    *,
    channels_last: bool = False,
    compile: bool = False,
    threads: int | None = None,
) -> TorchStep:
    """The MNIST CNN train step; `compile=True` uses torch.compile (inductor, needs a C++
    compiler), timed in `compile_sec` together with the first step."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    h, w, c = input_shape

    class MnistCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(c, 32, 3, padding=1)
            self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
            self.dense1 = nn.Linear(64 * (h // 4) * (w // 4), 256)
            self.logits = nn.Linear(256, 10)

        def forward(self, x_bchw: torch.Tensor) -> torch.Tensor:
            x = F.max_pool2d(F.relu(self.conv1(x_bchw)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            x = F.relu(self.dense1(torch.flatten(x, 1)))
            return self.logits(x)

    model = MnistCNN()
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4, foreach=True)
    gen = torch.Generator().manual_seed(0)
    images_bchw = torch.randint(0, 256, (batch_size, c, h, w), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, 10, (batch_size,), generator=gen)

    def forward_loss(images: torch.Tensor, labels: torch.Tensor):
        x = (images.float() / 255.0 - MEAN) / STD
        x = x.contiguous(memory_format=memory_format)
        logits = model(x)
        return F.cross_entropy(logits, labels), logits

    fwd = torch.compile(forward_loss) if compile else forward_loss

    def step() -> tuple[torch.Tensor, torch.Tensor]:
        loss, logits = fwd(images_bchw, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        grad_norm = torch.nn.utils.get_total_norm(grads)
        opt.step()
        correct = (logits.argmax(-1) == labels).sum()
        return grad_norm, correct

    t0 = time.perf_counter()
    step()
    compile_sec = time.perf_counter() - t0
    step()
    return TorchStep(step, batch_size, compile_sec)
