"""Independent sliding-window reference implementations (the seed's dot product), numpy only."""

from __future__ import annotations

import numpy as np


def pad(x_hwc: np.ndarray, pads: tuple[tuple[int, int], tuple[int, int]], mode="constant"):
    return np.pad(x_hwc, (pads[0], pads[1], (0, 0)), mode=mode)


def conv2d(x_hwc, kernel_hwio, bias, stride=1, pads=((0, 0), (0, 0)), dilation=1, mode="constant"):
    """out[i, j, o] = sum_{u, v, c} x_pad[i*s + u*d, j*s + v*d, c] * k[u, v, c, o] + b[o]."""
    x = pad(x_hwc, pads, mode)
    kh, kw, _, c_out = kernel_hwio.shape
    eff_h, eff_w = (kh - 1) * dilation + 1, (kw - 1) * dilation + 1
    out_h = (x.shape[0] - eff_h) // stride + 1
    out_w = (x.shape[1] - eff_w) // stride + 1
    out = np.zeros((out_h, out_w, c_out))
    for i in range(out_h):
        for j in range(out_w):
            window = x[
                i * stride : i * stride + eff_h : dilation,
                j * stride : j * stride + eff_w : dilation,
            ]
            for o in range(c_out):
                out[i, j, o] = np.sum(window * kernel_hwio[..., o]) + bias[o]
    return out


def pool2d(x_hwc, window, stride, reduce, pads=((0, 0), (0, 0)), mode="constant"):
    """Max or mean over each window (zero padding counts for mean, as in count_include_pad)."""
    x = (
        pad(x_hwc, pads, mode)
        if reduce is np.mean
        else np.pad(
            x_hwc,
            (pads[0], pads[1], (0, 0)),
            mode=mode,
            **({"constant_values": -np.inf} if mode == "constant" else {}),
        )
    )
    out_h = (x.shape[0] - window) // stride + 1
    out_w = (x.shape[1] - window) // stride + 1
    out = np.zeros((out_h, out_w, x.shape[2]))
    for i in range(out_h):
        for j in range(out_w):
            out[i, j] = reduce(
                x[i * stride : i * stride + window, j * stride : j * stride + window], axis=(0, 1)
            )
    return out
