"""The ViTPose plain vision transformer backbone (also HMR2's), with the official parameter names.

Matches ViTAE-Transformer/ViTPose mmpose/models/backbones/vit.py (class ViT) at inference: patch conv with
padding 2, ``pos_embed`` (1, 1 + H*W, C) whose first (cls) slot is added to every token, pre-norm blocks
(LayerNorm eps 1e-6, qkv-bias attention, exact-erf GELU MLP), ``last_norm``, tokens back to (B, C, H, W).
Every constructor takes ``device`` so the model can be built on ``meta`` (no memory) and materialised later.
Attention uses ``F.scaled_dot_product_attention`` where torch has it (2.x: fused kernels on GPU), otherwise
the same maths written out; both scale by head_dim ** -0.5.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ViTConfig

_SDPA = getattr(F, "scaled_dot_product_attention", None)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v over (B, heads, N, d) tensors."""
    if _SDPA is not None:
        return _SDPA(q, k, v)
    attn = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)
    return attn.softmax(dim=-1) @ v


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, device=None):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True, device=device)
        self.proj = nn.Linear(dim, dim, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        out = attention(qkv[0], qkv[1], qkv[2])
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, device=None):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden, device=device)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: int, device=None):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6, device=device)
        self.attn = Attention(dim, num_heads, device=device)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6, device=device)
        self.mlp = Mlp(dim, dim * mlp_ratio, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, dim: int, device=None):
        super().__init__()
        # official: padding = 4 + 2 * (ratio // 2 - 1) with ratio 1 -> 2
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size, padding=2, device=device)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        x = self.proj(x)
        hp, wp = x.shape[2], x.shape[3]
        return x.flatten(2).transpose(1, 2), hp, wp


class ViT(nn.Module):
    def __init__(self, cfg: ViTConfig, device=None):
        super().__init__()
        self.patch_embed = PatchEmbed(cfg.patch_size, cfg.embed_dim, device=device)
        num_patches = (cfg.img_hw[0] // cfg.patch_size) * (cfg.img_hw[1] // cfg.patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, cfg.embed_dim, device=device))
        self.blocks = nn.ModuleList(
            Block(cfg.embed_dim, cfg.num_heads, cfg.mlp_ratio, device=device) for _ in range(cfg.depth)
        )
        self.last_norm = nn.LayerNorm(cfg.embed_dim, eps=1e-6, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        x, hp, wp = self.patch_embed(x)
        x = x + self.pos_embed[:, 1:] + self.pos_embed[:, :1]
        for blk in self.blocks:
            x = blk(x)
        x = self.last_norm(x)
        return x.permute(0, 2, 1).reshape(b, -1, hp, wp)
