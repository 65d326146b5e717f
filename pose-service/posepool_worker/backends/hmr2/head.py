"""HMR2's SMPL head (SMPLTransformerDecoderHead + pose_transformer.TransformerDecoder), official names.

Keys under ``smpl_head.``: ``transformer.to_token_embedding`` (Linear 1 -> 1024), ``transformer.pos_embedding``
(1, 1, 1024), ``transformer.transformer.layers.{i}.{0,1,2}`` = PreNorm(self-attention ``to_qkv`` (no bias) /
``to_out.0``), PreNorm(cross-attention ``to_q``, ``to_kv`` (no bias) / ``to_out.0``), PreNorm(FFN ``net.0`` ->
GELU -> ``net.3``), each ``.norm`` a LayerNorm; ``decpose`` / ``decshape`` / ``deccam`` and the buffers
``init_body_pose`` (1, 144), ``init_betas`` (1, 10), ``init_cam`` (1, 3).
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..vitpose.vit import attention
from .config import HeadConfig


def split_heads(t: torch.Tensor, heads: int) -> torch.Tensor:  # b n (h d) -> b h n d
    b, n, hd = t.shape
    return t.reshape(b, n, heads, hd // heads).transpose(1, 2)


def merge_heads(t: torch.Tensor) -> torch.Tensor:  # b h n d -> b n (h d)
    b, h, n, d = t.shape
    return t.transpose(1, 2).reshape(b, n, h * d)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dim_head: int, device=None):
        super().__init__()
        self.heads = heads
        inner = heads * dim_head
        self.to_qkv = nn.Linear(dim, inner * 3, bias=False, device=device)
        self.to_out = nn.Sequential(nn.Linear(inner, dim, device=device), nn.Dropout(0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (split_heads(t, self.heads) for t in self.to_qkv(x).chunk(3, dim=-1))
        return self.to_out(merge_heads(attention(q, k, v)))


class CrossAttention(nn.Module):
    def __init__(self, dim: int, context_dim: int, heads: int, dim_head: int, device=None):
        super().__init__()
        self.heads = heads
        inner = heads * dim_head
        self.to_kv = nn.Linear(context_dim, inner * 2, bias=False, device=device)
        self.to_q = nn.Linear(dim, inner, bias=False, device=device)
        self.to_out = nn.Sequential(nn.Linear(inner, dim, device=device), nn.Dropout(0.0))

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        k, v = (split_heads(t, self.heads) for t in self.to_kv(context).chunk(2, dim=-1))
        q = split_heads(self.to_q(x), self.heads)
        return self.to_out(merge_heads(attention(q, k, v)))


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int, device=None):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden, device=device),
            nn.GELU(),
            nn.Dropout(0.0),
            nn.Linear(hidden, dim, device=device),
            nn.Dropout(0.0),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PreNorm(nn.Module):
    def __init__(self, dim: int, fn: nn.Module, device=None):
        super().__init__()
        self.norm = nn.LayerNorm(dim, device=device)
        self.fn = fn

    def forward(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        return self.fn(self.norm(x), **kwargs)


class CrossAttnTransformer(nn.Module):
    def __init__(self, cfg: HeadConfig, context_dim: int, device=None):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList(
                [
                    PreNorm(cfg.dim, SelfAttention(cfg.dim, cfg.heads, cfg.dim_head, device=device), device=device),
                    PreNorm(
                        cfg.dim,
                        CrossAttention(cfg.dim, context_dim, cfg.heads, cfg.dim_head, device=device),
                        device=device,
                    ),
                    PreNorm(cfg.dim, FeedForward(cfg.dim, cfg.mlp_dim, device=device), device=device),
                ]
            )
            for _ in range(cfg.depth)
        )

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            self_attn, cross_attn, ff = cast(nn.ModuleList, layer)
            x = self_attn(x) + x
            x = cross_attn(x, context=context) + x
            x = ff(x) + x
        return x


class TransformerDecoder(nn.Module):
    def __init__(self, cfg: HeadConfig, context_dim: int, device=None):
        super().__init__()
        self.to_token_embedding = nn.Linear(1, cfg.dim, device=device)
        self.pos_embedding = nn.Parameter(torch.zeros(1, 1, cfg.dim, device=device))
        self.transformer = CrossAttnTransformer(cfg, context_dim, device=device)

    def forward(self, token: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = self.to_token_embedding(token) + self.pos_embedding[:, : token.shape[1]]
        return self.transformer(x, context)


def rot6d_to_rotmat(x: torch.Tensor) -> torch.Tensor:
    """4D-Humans ``rot6d_to_rotmat``: (B, 6) -> (B, 3, 3) by Gram-Schmidt; columns b1, b2, b1 x b2."""
    x = x.reshape(-1, 2, 3).permute(0, 2, 1)
    a1, a2 = x[:, :, 0], x[:, :, 1]
    b1 = F.normalize(a1, dim=1)
    b2 = F.normalize(a2 - (b1 * a2).sum(dim=1, keepdim=True) * b1, dim=1)
    b3 = torch.cross(b1, b2, dim=1)
    return torch.stack((b1, b2, b3), dim=-1)


class SMPLHead(nn.Module):
    def __init__(self, cfg: HeadConfig, context_dim: int, device=None):
        super().__init__()
        self.num_joints = cfg.num_body_joints + 1
        npose = 6 * self.num_joints
        self.transformer = TransformerDecoder(cfg, context_dim, device=device)
        self.decpose = nn.Linear(cfg.dim, npose, device=device)
        self.decshape = nn.Linear(cfg.dim, cfg.num_betas, device=device)
        self.deccam = nn.Linear(cfg.dim, 3, device=device)
        self.register_buffer("init_body_pose", torch.zeros(1, npose, device=device))
        self.register_buffer("init_betas", torch.zeros(1, cfg.num_betas, device=device))
        self.register_buffer("init_cam", torch.zeros(1, 3, device=device))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, C, H, W) backbone features -> rotmats (B, 24, 3, 3) [global orient first], betas (B, 10),
        crop camera (B, 3) = (s, tx, ty)."""
        b = features.shape[0]
        context = features.flatten(2).transpose(1, 2)  # b c h w -> b (h w) c
        token = torch.zeros(b, 1, 1, device=features.device, dtype=features.dtype)
        out = self.transformer(token, context)[:, 0]
        pose = self.decpose(out) + self.init_body_pose
        betas = self.decshape(out) + self.init_betas
        cam = self.deccam(out) + self.init_cam
        rotmats = rot6d_to_rotmat(pose.float()).reshape(b, self.num_joints, 3, 3)
        return rotmats, betas.float(), cam.float()
