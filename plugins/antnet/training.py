"""Training: cross-entropy over the answer classes, BCE over the chosen options, the skeleton's
auxiliary loss, AdamW, gradient clipping, early stopping on dev macro-F1; optionally the
self-paced weights of the journal version (Yao et al., Knowledge-Based Systems 2022).
"""

from __future__ import annotations

import math
import random
from contextlib import nullcontext

import torch

from . import evaluation as E
from . import model as M
from .encoders import BiLSTMEncoder, HFEncoder, Vocabulary


def build(cfg, train, encoder=None) -> M.AnswerModel:
    """The encoder (a BiLSTM on the training text's vocabulary, or --encoder; or `encoder`,
    a frozen HFEncoder shared between models with its cache) and the model."""
    if encoder is not None:
        pass
    elif cfg.encoder is not None:
        encoder = HFEncoder.load(cfg.encoder, cfg.finetune, cfg.max_length)
    else:
        texts = [t for e in train for t in (e.question, e.answer, *e.options)]
        encoder = BiLSTMEncoder(Vocabulary.build(texts, cfg.tokens), cfg.embed, cfg.lstm)
    return M.AnswerModel(
        encoder,
        architecture=cfg.architecture,
        hidden=cfg.hidden,
        hops=cfg.hops,
        skeleton=cfg.skeleton,
        relevance=cfg.relevance,
        dropout=cfg.dropout,
    )


def self_paced_weights(loss: torch.Tensor, epoch: int, tau0: float = 1.5, k0: int = 10):
    """Per-example weights from the authors' self-paced code (the journal paper's formula was not
    available to check): for the first k0 epochs the threshold tau = tau0 (e + k0) / k0 grows
    from tau0 to 2 tau0 and w = sigmoid(5 (tau - loss)) favours easy examples; afterwards
    tau = tau0 (e - k0) / k0 restarts low and w = sigmoid(5 (loss - tau)) favours hard ones.
    The weights are constants of the step (the authors' code also differentiates through them,
    which pushes the loss of hard examples up)."""
    loss = loss.detach()
    if epoch <= k0:
        return torch.sigmoid(5 * (tau0 * (epoch + k0) / k0 - loss))
    return torch.sigmoid(5 * (loss - tau0 * (epoch - k0) / k0))


def _trainable_state(model) -> dict:
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k in names}


def optimizer(model, cfg) -> torch.optim.AdamW:
    """AdamW; a fine-tuned Hugging Face encoder gets its own learning rate."""
    enc = [p for p in model.encoder.parameters() if p.requires_grad]
    enc_ids = {id(p) for p in enc}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in enc_ids]
    if enc and isinstance(model.encoder, HFEncoder):
        groups = [{"params": rest, "lr": cfg.lr}, {"params": enc, "lr": cfg.encoder_lr}]
    else:
        groups = [{"params": rest + enc, "lr": cfg.lr}]
    return torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)


def fit(
    model,
    train,
    dev,
    cfg,
    *,
    device,
    dist=None,
    log=print,
    on_epoch=None,
    autocast=None,
    save=None,
    restore=None,
) -> dict:
    """Train in place; the model ends with its best-on-dev weights. Returns the history.

    `autocast`: a context-manager factory for mixed precision (the runtime's). `save(**state)`
    is called after every epoch with what `restore(model=, optimizer=)` gives back (the run
    folder's save_state / restore_state): a resumed fit goes on after its last whole epoch.
    """
    model.to(device)
    opt = optimizer(model, cfg)
    wrapped = dist.wrap(model, device) if dist is not None and dist.enabled else model
    rank, world = (dist.rank, dist.world_size) if dist is not None and dist.enabled else (0, 1)
    skeleton_weight = cfg.skeleton_weight if model.architecture == "antnet" and cfg.skeleton else 0
    order = list(range(len(train)))
    shuffle = random.Random(f"antnet-order-{cfg.data_seed}")
    best, best_state, history, waited, first = -1.0, None, [], 0, 0
    if restore is not None:
        meta = restore(model=model, optimizer=opt)
        first, best, waited, history = meta["step"], meta["best"], meta["waited"], meta["history"]
        best_state = meta["extra_tensors"]
        for _ in range(first):  # the shuffles of the epochs done
            shuffle.shuffle(order)
    for epoch in range(first, cfg.epochs):
        if waited >= cfg.patience:
            break
        model.train()
        shuffle.shuffle(order)
        steps = list(range(0, len(order), cfg.batch))
        steps = steps[: len(steps) // world * world][rank::world]  # as many on every rank
        total, seen = 0.0, 0
        for start in steps:
            chunk = [train[i] for i in order[start : start + cfg.batch]]
            batch = M.make_batch(chunk, model.encoder, joint=model.joint)
            with autocast() if autocast is not None else nullcontext():
                out = wrapped(batch)
            loss = M.losses(out, batch, skeleton_weight)
            if cfg.self_paced:
                loss = self_paced_weights(loss, epoch) * loss
            loss = loss.mean()
            if not math.isfinite(loss.item()):
                from mltk.errors import DivergedError

                raise DivergedError(
                    f"the loss became {loss.item()} in epoch {epoch + 1}; lower --lr"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            opt.step()
            total, seen = total + loss.item() * len(chunk), seen + len(chunk)
        scores = E.score(dev, E.predict(model, dev))
        row = {
            "epoch": epoch + 1,
            "loss": total / max(seen, 1),
            "dev_accuracy": scores["accuracy"],
            "dev_macro_f1": scores["macro_f1"],
        }
        history.append(row)
        log(
            f"epoch {epoch + 1}: loss {row['loss']:.4f}, dev accuracy {row['dev_accuracy']:.3f},"
            f" macro-F1 {row['dev_macro_f1']:.3f}"
        )
        if on_epoch is not None:
            on_epoch(row)
        if scores["macro_f1"] > best:
            best, best_state, waited = scores["macro_f1"], _trainable_state(model), 0
        else:
            waited += 1
        if save is not None:
            meta = {"best": best, "waited": waited, "history": history}
            save(model=model, optimizer=opt, step=epoch + 1, meta=meta, extra_tensors=best_state)
        if waited >= cfg.patience:
            log(f"no better dev macro-F1 for {cfg.patience} epochs: stopping")
    model.load_state_dict(best_state, strict=False)
    model.eval()
    best_epoch = max(history, key=lambda r: r["dev_macro_f1"])["epoch"]
    return {"history": history, "best_epoch": best_epoch, "best_dev_macro_f1": best}
