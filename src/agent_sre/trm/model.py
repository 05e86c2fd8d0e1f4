"""Tiny Recursive Model (Jolicoeur-Martineau 2025, "Less is More: Recursive Reasoning with Tiny
Networks", arXiv 2510.04871), written to be read next to the paper.

Notation follows the paper: x = embedded input, y = current answer embedding, z = latent reasoning
state. One *tiny* network `net` (2 post-norm blocks) is shared by both updates:

    one supervision step = T cycles of
        z <- net(x + y + z)     (n times: "think")
        y <- net(y + z)         (once: "answer"; no x, so the net knows which job it does)
    the first T-1 cycles run without gradient; only the last cycle is back-propagated
    logits = head(y);  q_halt = Q_head(y[:, 0])   (halting: "is the current answer right?")

Deep supervision repeats the step up to n_sup times with the carry (y, z) detached in between, so
each step is trained as if it were the whole model, starting from a better (y, z) each time.

Sequence layout: `n_prefix` learned positions are prepended (the paper's puzzle-embedding slots);
the Q head reads prefix position 0, the output head reads the L real positions.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import TRMConfig
from .halting import act

IGNORE_INDEX = -100


# ---------------------------------------------------------------- building blocks


def _lecun_(w: torch.Tensor) -> torch.Tensor:
    """Truncated LeCun normal (std 1/sqrt(fan_in)), the reference code's linear init."""
    std = 1.0 / math.sqrt(w.shape[1])
    return nn.init.trunc_normal_(w, std=std, a=-2 * std, b=2 * std)


def linear(d_in: int, d_out: int, bias: bool = False) -> nn.Linear:
    lin = nn.Linear(d_in, d_out, bias=bias)
    with torch.no_grad():
        _lecun_(lin.weight)
        if bias:
            lin.bias.zero_()
    return lin


def rms_norm(h: torch.Tensor, eps: float) -> torch.Tensor:
    # No learned gain, as in the reference: post-norm keeps the recursion's scale fixed.
    return F.rms_norm(h.float(), (h.shape[-1],), eps=eps).to(h.dtype)  # in fp32 even under bf16


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class SwiGLU(nn.Module):
    def __init__(self, dim: int, expansion: float, multiple: int):
        super().__init__()
        inter = -(-round(expansion * dim * 2 / 3) // multiple) * multiple  # 2/3 keeps params ~ a 4x MLP
        self.gate_up = linear(dim, 2 * inter)
        self.down = linear(inter, dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(h).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


class Attention(nn.Module):
    """Non-causal multi-head self-attention with rotary position embeddings."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = linear(dim, 3 * dim)
        self.out = linear(dim, dim)

    def forward(self, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                keep: torch.Tensor | None = None) -> torch.Tensor:
        B, S, D = h.shape
        q, k, v = self.qkv(h).view(B, S, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k = q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin  # cos/sin: [S, hd]
        # keep: Bool[B, S], False = padding, which no position may attend to.
        mask = None if keep is None else keep[:, None, None, :]
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=False)
        return self.out(o.transpose(1, 2).reshape(B, S, D))


class Block(nn.Module):
    """Post-norm block: h = norm(h + mix(h)); h = norm(h + swiglu(h))."""

    def __init__(self, cfg: TRMConfig):
        super().__init__()
        self.eps = cfg.norm_eps
        if cfg.mixer == "attention":
            self.attn = Attention(cfg.hidden, cfg.heads)
        else:  # paper's TRM-MLP: an MLP mixing along the sequence axis (fixed length needed)
            self.seq_mlp = SwiGLU(cfg.seq_len + cfg.n_prefix, cfg.expansion, 1)
        self.mlp = SwiGLU(cfg.hidden, cfg.expansion, cfg.ffn_multiple)

    def forward(self, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                keep: torch.Tensor | None = None) -> torch.Tensor:
        if hasattr(self, "attn"):
            h = rms_norm(h + self.attn(h, cos, sin, keep), self.eps)
        else:
            h = rms_norm(h + self.seq_mlp(h.transpose(1, 2)).transpose(1, 2), self.eps)
        return rms_norm(h + self.mlp(h), self.eps)


class Net(nn.Module):
    """The single tiny network used for both the z and the y update (inputs are summed by the caller)."""

    def __init__(self, cfg: TRMConfig):
        super().__init__()
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        hd, S = cfg.hidden // cfg.heads, cfg.seq_len + cfg.n_prefix
        inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, hd, 2).float() / hd))
        ang = torch.outer(torch.arange(S).float(), inv_freq)
        ang = torch.cat((ang, ang), dim=-1)
        # Non-persistent: derived from the config, so it never goes into checkpoints/exports.
        self.register_buffer("cos", ang.cos(), persistent=False)
        self.register_buffer("sin", ang.sin(), persistent=False)

    def forward(self, h: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        S = h.shape[1]
        cos, sin = self.cos[:S].to(h.dtype), self.sin[:S].to(h.dtype)
        for blk in self.blocks:
            h = blk(h, cos, sin, keep)
        return h


# ---------------------------------------------------------------- the model


class TRM(nn.Module):
    def __init__(self, cfg: TRMConfig):
        super().__init__()
        self.cfg = cfg
        D = cfg.hidden
        # All channels live in one table: channel c's id k>0 maps to row base_c + k, every channel's
        # id 0 maps to the shared zero padding row 0. EmbeddingBag(sum) then does lookup + channel sum.
        bases, acc = [], 0
        for v in cfg.feature_vocab:
            bases.append(acc)
            acc += v - 1
        self.register_buffer("channel_base", torch.tensor(bases, dtype=torch.long), persistent=False)
        self.register_buffer("channel_vocab", torch.tensor(cfg.feature_vocab, dtype=torch.long),
                             persistent=False)
        self.tok_emb = nn.EmbeddingBag(acc + 1, D, mode="sum", padding_idx=0)
        self.prefix_emb = nn.Parameter(torch.empty(cfg.n_prefix, D))
        # Embedding std 1/sqrt(D), scaled by sqrt(D) in embed(): unit-scale inputs, well-behaved Adam.
        self.embed_scale = math.sqrt(D)
        with torch.no_grad():
            for w in (self.tok_emb.weight, self.prefix_emb):
                nn.init.trunc_normal_(w, std=1 / math.sqrt(D), a=-2 / math.sqrt(D), b=2 / math.sqrt(D))
            self.tok_emb.weight[0].zero_()
        # Fixed (not learned) initial y and z, as in the reference implementation.
        self.register_buffer("y_init", nn.init.trunc_normal_(torch.empty(D), std=1.0, a=-2, b=2))
        self.register_buffer("z_init", nn.init.trunc_normal_(torch.empty(D), std=1.0, a=-2, b=2))
        self.net = Net(cfg)
        self.head = linear(D, cfg.n_out)
        self.q_head = linear(D, 1, bias=True)
        with torch.no_grad():  # start "never halt" so early training uses all supervision steps
            self.q_head.weight.zero_()
            self.q_head.bias.fill_(-5.0)

    # -- input --------------------------------------------------------------------------------
    def embed(self, x: torch.Tensor, *, bag: bool = True) -> torch.Tensor:
        """x: Long[B, L, F] -> x_emb: [B, n_prefix + L, D] (prefix first, channel embeddings summed).
        ``bag=False`` computes the same sum as a lookup then a sum, the form the ONNX export can
        express (EmbeddingBag with a padding index has none); row 0, the padding row, is zero."""
        cfg = self.cfg
        if x.dim() != 3 or x.shape[2] != len(cfg.feature_vocab):
            raise ValueError(f"x must be [B, L, {len(cfg.feature_vocab)}], got {tuple(x.shape)}")
        B, L, Fc = x.shape
        if L > cfg.seq_len or (cfg.mixer == "mlp" and L != cfg.seq_len):
            raise ValueError(f"sequence length {L} does not fit seq_len={cfg.seq_len} ({cfg.mixer})")
        # Out-of-range ids would silently land in the next channel's rows; refuse them instead.
        if bool(((x < 0) | (x >= self.channel_vocab)).any()):
            raise ValueError("input ids out of range for feature_vocab")
        ids = torch.where(x > 0, x + self.channel_base, torch.zeros_like(x))
        if bag:
            e = self.tok_emb(ids.reshape(B * L, Fc)).view(B, L, -1)
        else:
            e = F.embedding(ids, self.tok_emb.weight).sum(2)
        e = torch.cat((self.prefix_emb.to(e.dtype).expand(B, -1, -1), e), dim=1)
        return self.embed_scale * e

    @property
    def masks_padding(self) -> bool:
        return self.cfg.masks_padding

    def keep_mask(self, x: torch.Tensor) -> torch.Tensor | None:
        """Bool[B, n_prefix + L]: True where attention may look (prefix and real positions), or
        None when this model attends to everything."""
        if not self.masks_padding:
            return None
        real = (x != 0).any(-1)
        return torch.cat((torch.ones_like(real[:, :self.cfg.n_prefix]), real), dim=1)

    def trim(self, x: torch.Tensor) -> torch.Tensor:
        """Cut the trailing columns that are padding in every row of the batch (exact only with
        ``mask_padding``; otherwise x comes back unchanged). Padding is always trailing."""
        if not self.masks_padding:
            return x
        real = (x != 0).any(-1).any(0)
        n = int(real.nonzero().max()) + 1 if bool(real.any()) else 1
        return x[:, :n]

    def initial_carry(self, batch_size: int, seq_len: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        S = (seq_len or self.cfg.seq_len) + self.cfg.n_prefix
        D = self.cfg.hidden
        return self.y_init.expand(batch_size, S, D), self.z_init.expand(batch_size, S, D)

    # -- recursion ----------------------------------------------------------------------------
    def _cycle(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, keep: torch.Tensor | None = None):
        for _ in range(self.cfg.n):
            z = self.net(x + y + z, keep)  # latent reasoning: sees the question, the answer, itself
        y = self.net(y + z, keep)  # answer update: no x
        return y, z

    def step(self, x_emb: torch.Tensor, y: torch.Tensor, z: torch.Tensor, keep: torch.Tensor | None = None):
        """One deep-supervision step. Returns (y, z) detached for the next step, plus logits
        [B, L, n_out] and the halting logit q_halt [B] that carry this step's gradient.
        ``keep``: the attention mask from ``keep_mask(x)`` (None: attend everywhere)."""
        with torch.no_grad():  # T-1 cycles only improve (y, z); no memory, no gradient
            for _ in range(self.cfg.T - 1):
                y, z = self._cycle(x_emb, y, z, keep)
        y, z = self._cycle(x_emb, y, z, keep)  # the one back-propagated cycle
        P = self.cfg.n_prefix
        logits = self.head(y[:, P:])
        q_halt = self.q_head(y[:, 0]).squeeze(-1).float()
        return y.detach(), z.detach(), logits, q_halt

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None, z: torch.Tensor | None = None):
        """Embed + one supervision step (from the initial carry unless y, z are given)."""
        x_emb = self.embed(x)
        if y is None or z is None:
            y0, z0 = self.initial_carry(x.shape[0], x.shape[1])
            y, z = (y0 if y is None else y), (z0 if z is None else z)
        return self.step(x_emb, y, z, self.keep_mask(x))

    # -- inference with ACT -------------------------------------------------------------------
    @torch.inference_mode()
    def predict(self, x: torch.Tensor, max_steps: int | None = None,
                halt_threshold: float = 0.0) -> dict[str, torch.Tensor]:
        """Up to max_steps (default n_sup) supervision steps with per-row halting (``halting.act``:
        a row stops at the first step with q_halt > halt_threshold, or at the last). Halted rows are
        not computed again, and with ``mask_padding`` only columns up to the batch's longest alert
        are (probabilities past it are 0). Returns probs [B,L,n_out], steps [B], q_halt [B]."""
        B, width = x.shape[:2]
        x = self.trim(x)
        L = x.shape[1]
        carry = [self.embed(x), *self.initial_carry(B, L), self.keep_mask(x)]

        def step(running: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
            if running is not None:
                rows = torch.from_numpy(running).to(x.device)
                carry[:] = [None if t is None else t[rows] for t in carry]
            x_emb, y, z, keep = carry
            carry[1], carry[2], logits, q = self.step(x_emb, y, z, keep)
            return logits.float().cpu().numpy(), q.float().cpu().numpy()

        out = act(step, B, length=L, width=width, n_out=self.cfg.n_out, max_steps=max_steps or self.cfg.n_sup,
                  halt_threshold=halt_threshold)
        return {k: torch.from_numpy(v).to(x.device) for k, v in out.items()}


def count_parameters(model: nn.Module) -> int:
    """All parameters, embeddings included (y_init/z_init are fixed buffers, not counted)."""
    return sum(p.numel() for p in model.parameters())
