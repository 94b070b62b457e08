"""Symmetric InfoNCE (CLIP's loss), with soft targets and gathering across DDP ranks.

logits = s * normalize(img) @ normalize(txt)^T with the learnable scale s = exp(log_scale)
(CLIP: initialised at ln(1/0.07), clamped at 100); the loss is the mean of the image-to-text
and text-to-image cross-entropies. Targets are the diagonal, or ``soft_targets`` (B, B) whose
rows sum to one (e.g. to count duplicate captions as positives). Under DDP every rank scores
its images against the texts of all ranks: the embeddings are gathered with autograd's
``all_gather`` (the gradient flows back to each rank's own rows).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOGIT_SCALE_INIT = math.log(1 / 0.07)
LOGIT_SCALE_MAX = 100.0


def info_nce(
    img: torch.Tensor,
    txt: torch.Tensor,
    log_scale: torch.Tensor | float = LOGIT_SCALE_INIT,
    soft_targets: torch.Tensor | None = None,
    dist=None,
) -> torch.Tensor:
    """Symmetric InfoNCE of matched rows of ``img`` (B, D) and ``txt`` (B, D)."""
    img, txt = F.normalize(img, dim=-1), F.normalize(txt, dim=-1)
    all_img = dist.gather(img) if dist is not None else img  # every rank's rows (mltk.device)
    all_txt = dist.gather(txt) if dist is not None else txt
    rank = dist.rank if dist is not None and dist.enabled else 0
    scale = torch.as_tensor(log_scale, dtype=img.dtype, device=img.device).exp()
    scale = scale.clamp(max=LOGIT_SCALE_MAX)
    logits_i = scale * img @ all_txt.T  # (B, world*B): my images against every text
    logits_t = scale * txt @ all_img.T
    b = img.shape[0]
    if soft_targets is None:
        target = torch.arange(b, device=img.device) + rank * b
        return (F.cross_entropy(logits_i, target) + F.cross_entropy(logits_t, target)) / 2
    cols = slice(rank * b, (rank + 1) * b)
    full_i = torch.zeros_like(logits_i)  # image i -> every text
    full_i[:, cols] = soft_targets
    full_t = torch.zeros_like(logits_t)  # text j -> every image
    full_t[:, cols] = soft_targets.T
    loss_i = -(full_i * F.log_softmax(logits_i, dim=1)).sum(1).mean()
    loss_t = -(full_t * F.log_softmax(logits_t, dim=1)).sum(1).mean()
    return (loss_i + loss_t) / 2
