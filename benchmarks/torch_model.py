"""PyTorch twins of the project's CNNs, built from the same `ModelSpec`, and their train step.

`TorchCNN(spec, input_shape)` mirrors `cnn_jax.nn.models.CNN` layer for layer (conv blocks,
basic residual blocks, max/avg pooling, batch norm, flatten or global-average head, hidden
dense layers) with XLA's padding: 'SAME' pads (total // 2, rest), which for stride 2 is
asymmetric, so the model pads explicitly instead of using Conv2d's symmetric padding. The
flatten head flattens in HWC order like the JAX model. `copy_flax_variables` copies a Flax
model's params and batch statistics in, so the logits can be checked equal
(tests/e2e/test_torch_twin.py). The train step does the JAX step's work: normalise uint8 images,
forward, cross-entropy, backward, global gradient norm, AdamW, correct count.

PyTorch is an optional benchmark-only dependency (`pip install torch==2.13.0`, CPU wheel).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from cnn_jax.nn import layers, pooling
from cnn_jax.nn.model_spec import BlockSpec, ModelSpec

MEAN, STD = 0.5, 0.25
BN_MOMENTUM = 0.1  # torch's convention: flax momentum 0.9 keeps 90% of the old statistic
BN_EPSILON = 1e-5
SUPPORTED_POOLS = ("max", "avg", "none")


def _pads(size: int, block: BlockSpec, kernel: int, stride: int) -> tuple[int, int]:
    pad = layers.canonical_padding(block.padding)
    if isinstance(pad, tuple):
        return pad[0]
    if pad == "VALID":
        return (0, 0)
    if pad == "SAME":
        return pooling.same_padding_amounts(size, kernel, stride)
    raise ValueError(f"padding: {pad!r} has no PyTorch twin; allowed: SAME, VALID, int")


def _torch_modules():
    """Builds the module classes lazily, so importing this file does not need torch."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    acts: dict[str, Callable] = {"relu": F.relu, "tanh": torch.tanh, "identity": lambda x: x}

    class Conv(nn.Module):
        """Conv2d with XLA's (possibly asymmetric) padding for an input of `size` pixels."""

        def __init__(self, c_in: int, block: BlockSpec, size: int, *, k=None, stride=None, bias):
            super().__init__()
            k = block.kernel_size if k is None else k
            s = block.stride if stride is None else stride
            self.pad = _pads(size, block, k, s) if k > 1 else (0, 0)
            self.conv = nn.Conv2d(c_in, block.features, k, s, bias=bias)
            self.out_size = (size + sum(self.pad) - k) // s + 1

        def forward(self, x):
            if self.pad != (0, 0):
                x = F.pad(x, (self.pad[0], self.pad[1], self.pad[0], self.pad[1]))
            return self.conv(x)

    def bn(c: int) -> nn.BatchNorm2d:
        return nn.BatchNorm2d(c, eps=BN_EPSILON, momentum=BN_MOMENTUM)

    class Block(nn.Module):
        def __init__(self, c_in: int, b: BlockSpec, size: int):
            super().__init__()
            if b.activation not in acts or b.pool not in SUPPORTED_POOLS or b.dilation != 1:
                raise ValueError(f"block {b}: no PyTorch twin (relu/tanh, max/avg, no dilation)")
            if b.dropout or b.noise_std:
                raise ValueError("dropout / noise: not in the benchmark twin")
            self.b, self.act = b, acts[b.activation]
            if b.type == "residual":
                self.conv1 = Conv(c_in, b, size, bias=False)
                self.bn1 = bn(b.features)
                self.conv2 = Conv(b.features, b, self.conv1.out_size, stride=1, bias=False)
                self.bn2 = bn(b.features)
                self.shortcut = None
                if b.stride != 1 or c_in != b.features:
                    self.shortcut = Conv(c_in, b, size, k=1, bias=False)
                    self.shortcut_bn = bn(b.features)
                size = self.conv1.out_size
            else:
                self.conv = Conv(c_in, b, size, bias=b.use_bias and not b.batch_norm)
                self.bn = bn(b.features) if b.batch_norm else None
                size = self.conv.out_size
            self.out_size = size // b.pool_window if b.pool != "none" else size

        def forward(self, x):
            b = self.b
            if b.type == "residual":
                y = self.act(self.bn1(self.conv1(x)))
                y = self.bn2(self.conv2(y))
                s = x if self.shortcut is None else self.shortcut_bn(self.shortcut(x))
                x = self.act(y + s)
            else:
                x = self.conv(x)
                x = self.act(self.bn(x) if self.bn is not None else x)
            if b.pool == "max":
                x = F.max_pool2d(x, b.pool_window, b.pool_stride)
            elif b.pool == "avg":
                x = F.avg_pool2d(x, b.pool_window, b.pool_stride)
            return x

    class TorchCNN(nn.Module):
        """The spec's CNN in PyTorch; forward takes normalised NCHW (any memory format)."""

        def __init__(self, spec: ModelSpec, input_shape: tuple[int, int, int]):
            super().__init__()
            h, w, c = input_shape
            if h != w:
                raise ValueError(f"input_shape: {input_shape}; the twin needs square images")
            blocks, size = [], h
            for b in spec.blocks:
                blocks.append(Block(c, b, size))
                c, size = b.features, blocks[-1].out_size
            self.blocks = nn.ModuleList(blocks)
            self.head_kind, self.head_act = spec.head.kind, acts[spec.head.activation]
            width = c if spec.head.kind == "global_avg" else c * size * size
            dense = []
            for hidden in spec.head.hidden:
                dense.append(nn.Linear(width, hidden))
                width = hidden
            self.dense = nn.ModuleList(dense)
            self.logits = nn.Linear(width, spec.num_classes)

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            if self.head_kind == "global_avg":
                x = x.mean(dim=(2, 3))
            else:  # HWC order, as the JAX model flattens NHWC
                x = x.permute(0, 2, 3, 1).flatten(1)
            for layer in self.dense:
                x = self.head_act(layer(x))
            return self.logits(x)

    return TorchCNN


def torch_cnn(spec: ModelSpec, input_shape: tuple[int, int, int]):
    """A `TorchCNN` for `spec` (float32, contiguous memory format)."""
    return _torch_modules()(spec, tuple(input_shape))


def copy_flax_variables(model, variables: Mapping[str, Any]) -> None:
    """Copies Flax {'params', 'batch_stats'} of `cnn_jax.nn.models.CNN` into a TorchCNN."""
    import torch

    params, stats = variables["params"], variables.get("batch_stats", {})

    def put(dst: torch.Tensor, value: Any, transpose: tuple[int, ...] | None = None) -> None:
        arr = np.array(value, np.float32)  # a writable copy
        arr = arr.transpose(transpose) if transpose else arr
        if tuple(dst.shape) != arr.shape:
            raise ValueError(f"shape mismatch: torch {tuple(dst.shape)} vs flax {arr.shape}")
        with torch.no_grad():
            dst.copy_(torch.from_numpy(np.ascontiguousarray(arr)))

    def conv(dst, src) -> None:
        put(dst.conv.weight, src["kernel"], (3, 2, 0, 1))  # HWIO -> OIHW
        if "bias" in src:
            put(dst.conv.bias, src["bias"])

    def norm(dst, p, s) -> None:
        put(dst.weight, p["scale"])
        put(dst.bias, p["bias"])
        put(dst.running_mean, s["mean"])
        put(dst.running_var, s["var"])

    for i, block in enumerate(model.blocks):
        p, s = params[f"block{i}"], stats.get(f"block{i}", {})
        if block.b.type == "residual":
            names = [("conv1", "bn1"), ("conv2", "bn2")]
            if block.shortcut is not None:
                names.append(("shortcut_conv", "shortcut_bn"))
            for conv_name, bn_name in names:
                conv(getattr(block, conv_name.replace("_conv", "")), p[conv_name])
                norm(getattr(block, bn_name), p[bn_name], s[bn_name])
        else:
            conv(block.conv, p["conv"])
            if block.bn is not None:
                norm(block.bn, p["bn"], s["bn"])
    for j, layer in enumerate(model.dense):
        put(layer.weight, params[f"dense{j}"]["kernel"], (1, 0))
        put(layer.bias, params[f"dense{j}"]["bias"])
    put(model.logits.weight, params["logits"]["kernel"], (1, 0))
    put(model.logits.bias, params["logits"]["bias"])


@dataclasses.dataclass
class TorchStep:
    """A ready-to-run PyTorch train step on a resident synthetic batch."""

    run_once: Callable[[], Any]
    batch_size: int
    compile_sec: float
    sync: Callable[[], None] = lambda: None  # waits for queued device work (CUDA)

    def run(self, n: int = 1) -> None:
        for _ in range(n):
            self.run_once()
        self.sync()


def build_torch_step(
    spec: ModelSpec,
    batch_size: int,
    input_shape: tuple[int, int, int],
    *,
    channels_last: bool = False,
    compile: bool = False,
    threads: int | None = None,
    device: str = "cpu",
    autocast_bf16: bool = False,
) -> TorchStep:
    """The train step of `spec`. `compile=True`: torch.compile (inductor, needs a C++
    compiler) of the forward + loss (AOTAutograd compiles its backward) and of the optimizer
    step; `compile_sec` is the first step, compilation included (with two warm-up steps, as
    inductor compiles the backward and the optimizer on first use). `device="cuda"` runs on
    the GPU; `autocast_bf16` runs the forward under bfloat16 autocast (mixed precision)."""
    import torch
    import torch.nn.functional as F

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    h, w, c = input_shape
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = torch_cnn(spec, input_shape).to(device=device, memory_format=memory_format)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4, foreach=True)
    gen = torch.Generator().manual_seed(0)
    images_bchw = torch.randint(0, 256, (batch_size, c, h, w), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, spec.num_classes, (batch_size,), generator=gen).to(device)
    images_bchw = images_bchw.to(device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def forward_loss(images: torch.Tensor, labels: torch.Tensor):
        x = (images.float() / 255.0 - MEAN) / STD
        x = x.contiguous(memory_format=memory_format)
        with torch.autocast(device.split(":")[0], torch.bfloat16, enabled=autocast_bf16):
            logits = model(x)
        return F.cross_entropy(logits.float(), labels), logits

    fwd = torch.compile(forward_loss) if compile else forward_loss
    opt_step = torch.compile(opt.step) if compile else opt.step

    def step() -> tuple[torch.Tensor, torch.Tensor]:
        loss, logits = fwd(images_bchw, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        grad_norm = torch.nn.utils.get_total_norm(grads)
        opt_step()
        correct = (logits.argmax(-1) == labels).sum()
        return grad_norm, correct

    t0 = time.perf_counter()
    step()
    sync()
    compile_sec = time.perf_counter() - t0
    step()
    step()
    sync()
    return TorchStep(step, batch_size, compile_sec, sync)
