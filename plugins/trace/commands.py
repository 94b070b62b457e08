"""The verbs' bodies for rule chains on knowledge graphs (learn, score, write rules, answer
queries) and the dispatch of `search` to the meta-path and cell tasks."""

from __future__ import annotations

import csv
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from mltk.atomic import write_text
from mltk.checkpoint import save_checkpoint
from mltk.errors import DataError, UsageError

from . import kg as K
from .config import RulesConfig, resolved, settings_from


def _absolute(cfg):
    """A run records where its data is, so it can be found from any folder."""
    if cfg.data and Path(cfg.data).exists():
        return replace(cfg, data=str(Path(cfg.data).resolve()))
    return cfg


def run_search(cfg: RulesConfig, rt, *, task: str) -> dict:
    cfg = _absolute(resolved(cfg))
    if task == "kg":
        return _search_kg(cfg, rt)
    from . import tasks

    return tasks.search_hin(cfg, rt) if task == "hin" else tasks.search_nas(cfg, rt)


# --- knowledge graphs ------------------------------------------------------------------------


def _settings(cfg: RulesConfig):
    from .rules import Settings

    names = (
        "length",
        "decomp",
        "rank",
        "objective",
        "epochs",
        "batch_size",
        "lr",
        "samples",
        "init_scale",
    )
    return settings_from(cfg, Settings(), {n: n for n in names})


def _describe(kg: K.KG, log) -> None:
    sizes = ", ".join(f"{s} {len(kg.splits[s]):,}" for s in K.SPLITS)
    log(f"{kg.name}: {kg.n_entities:,} entities, {kg.n_relations} relations; {sizes}")


def _search_kg(cfg: RulesConfig, rt) -> dict:
    from . import rules as R

    kg = K.load(cfg.data, split=cfg.split, seed=rt.seed)
    if len(kg.splits["valid"]) == 0:
        raise DataError(f"{cfg.data}: the valid split is empty (it is scored after each epoch)")
    _describe(kg, rt.out.log)
    s = _settings(cfg)
    rt.out.log(
        f"{s.decomp} distribution (rank {1 if s.decomp == 'independent' else s.rank}) over "
        f"{kg.n_operators}^{s.length} chains per query relation, {s.objective} objective"
    )
    run = rt.run
    valid_q, valid_a = K.queries(kg.splits["valid"], kg.n_relations)
    walker = R.Walker(kg, kg.graph(), torch.float64)  # scores valid and test

    t0 = time.perf_counter()
    with rt.out.progress(s.epochs, "epochs") as bar:

        def on_epoch(dist, epoch):
            sc = R.scores_for(kg, dist, valid_q, walker=walker)
            m = R.metrics(*R.ranks(kg, sc, valid_q, valid_a))
            bar.advance(1)
            return {"valid_mrr": m["mrr"], "valid_hits@10": m["hits@10"]}

        dist, history = R.train(kg, s, seed=rt.seed, on_epoch=on_epoch, log=rt.out.log)
    train_seconds = time.perf_counter() - t0
    for row in history:
        run.log_metrics(row["epoch"], **{k: v for k, v in row.items() if k != "epoch"})
    rt.record(cfg)
    result = R.evaluate(kg, dist, "test", walker=walker)
    rules = R.extract_rules(kg, dist, per_head=cfg.top, min_prob=cfg.min_probability)
    save_kg_run(run.checkpoint_dir, kg, dist, s)
    _write_rules(run.artifact("rules.tsv"), rules)
    _write_predictions(run.artifact("test_predictions.txt"), kg, result)
    directions = _directions(kg, result)
    epoch_s = float(np.mean([r["seconds"] for r in history]))
    rt.out.log(f"{len(rules):,} rules written; {epoch_s:.2f} s per epoch")
    return {
        "data": kg.name,
        "decomp": s.decomp,
        "rank": dist.rank,
        "length": s.length,
        "epochs": s.epochs,
        **{k: result[k] for k in ("mrr", "hits@1", "hits@3", "hits@10")},
        "mrr_strict": result["mrr_strict"],
        "directions": directions,
        "seconds_per_epoch": epoch_s,
        "train_seconds": train_seconds,
        "rules": _strongest(rules, 8),
        "run": str(run.path),
        "files": [
            "config.json",
            "metrics.jsonl",
            "checkpoint/",
            "rules.tsv",
            "test_predictions.txt",
        ],
    }


def _strongest(rules: list[dict], n: int) -> list[dict]:
    """For the summary: the most probable rule of each relation that has a body and holds
    somewhere, the n most confident of those."""
    best: dict[str, dict] = {}
    for r in rules:
        if r["head"] not in best and r["support"] and r["length"]:
            best[r["head"]] = r
    top = sorted(best.values(), key=lambda r: (-r["confidence"], -r["support"]))[:n]
    return [
        {
            "rule": r["rule"],
            "p": round(r["probability"], 3),
            "support": r["support"],
            "confidence": round(r["confidence"], 3),
        }
        for r in top
    ]


def _directions(kg: K.KG, result: dict) -> list[dict]:
    """Metrics of the (h, r, ?) and (?, r, t) queries apart (both are pooled above)."""
    from .rules import metrics

    inverse = result["_q"][:, 1] >= kg.n_relations
    rows = []
    for name, mask in (("(h, r, ?)", ~inverse), ("(?, r, t)", inverse)):
        m = metrics(result["_higher"][mask], result["_ties"][mask])
        rows.append(
            {
                "direction": name,
                "queries": m["queries"],
                **{k: m[k] for k in ("mrr", "hits@1", "hits@3", "hits@10")},
            }
        )
    return rows


def save_kg_run(directory: Path, kg: K.KG, dist, s) -> None:
    """The distribution's logits and the graph itself (so eval and predict need no data)."""
    tensors = {f"dist.{k}": v.detach().cpu() for k, v in dist.state_dict().items()}
    tensors.update({f"split.{k}": v for k, v in kg.splits.items()})
    save_checkpoint(
        directory,
        tensors,
        {
            "task": "kg",
            "name": kg.name,
            "entities": kg.entities,
            "relations": kg.relations,
            "settings": asdict(s),
        },
    )


def load_kg_run(run, checkpoint: tuple[dict, dict] | None = None):
    """(kg, distribution, settings) of a rules run; ``checkpoint``: its (tensors, meta) when
    already read."""
    from .rules import Settings, make_distribution

    tensors, meta = checkpoint or run.load()
    if meta.get("task") != "kg":
        raise DataError(f"{run.path} is a {meta.get('task')} run, not a rules (kg) run")
    try:
        splits = {k: tensors[f"split.{k}"].numpy() for k in K.SPLITS}
        kg = K.KG(meta["name"], list(meta["entities"]), list(meta["relations"]), splits)
        s = Settings(**meta["settings"])
        dist = make_distribution(kg, s)
        state = {k[5:]: v for k, v in tensors.items() if k.startswith("dist.")}
        dist.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()})
    except (KeyError, TypeError, RuntimeError) as exc:
        raise DataError(f"{run.path}/checkpoint does not hold a rules model ({exc})") from exc
    return kg, dist, s


def _write_rules(path: Path, rules: list[dict]) -> None:
    lines = ["head\tprobability\tsupport\tconfidence\tlength\trule"]
    for r in rules:
        lines.append(
            f"{r['head']}\t{r['probability']:.6f}\t{r['support']}\t"
            f"{r['confidence']:.6f}\t{r['length']}\t{r['rule']}"
        )
    write_text(path, "\n".join(lines) + "\n")


# Neural-LP's test_predictions.txt: "query,answer,start,e_1,...,e_m,answer", the e_i scoring
# strictly above the answer, best first. Its query "r" asks (?, r, start) and "inv_r" asks
# (start, r, ?): the reverse of our names, where "inv_r" is the (?, r, t) direction.


def _nlp_query(kg: K.KG, head: int) -> str:
    r = kg.n_relations
    return f"inv_{kg.relations[head]}" if head < r else kg.relations[head - r]


def _write_predictions(path: Path, kg: K.KG, result: dict) -> None:
    scores, q, a = result["_scores"], result["_q"], result["_a"]
    lines = []
    for i, ((e, head), ans) in enumerate(zip(q.tolist(), a.tolist())):
        s = scores[i]
        above = np.flatnonzero(s > s[ans])
        above = above[np.argsort(-s[above], kind="stable")]
        names = [kg.entities[j] for j in above] + [kg.entities[ans]]
        lines.append(",".join([_nlp_query(kg, head), kg.entities[ans], kg.entities[e], *names]))
    write_text(path, "\n".join(lines) + "\n")


def score_predictions(kg: K.KG, path: Path) -> dict:
    """MRR and Hits@k of a Neural-LP / DRUM predictions file, filtered as their evaluator does
    (ranks count the listed entities above the answer that are not true answers)."""
    from .rules import metrics

    e_ix = {e: i for i, e in enumerate(kg.entities)}
    r_ix = {r: i for i, r in enumerate(kg.relations)}
    known = kg.answers()
    higher = []
    with open(path, newline="") as fh:
        for n, row in enumerate(csv.reader(fh), 1):
            if not row:
                continue
            if len(row) < 4:
                raise DataError(
                    f"{path}, line {n}: a prediction line holds query, answer, "
                    f"start and the ranked entities; this one has {len(row)} fields"
                )
            query, answer, start, preds = row[0], row[1], row[2], row[3:]
            rel = query[4:] if query.startswith("inv_") else query
            if rel not in r_ix:
                raise DataError(f"{path}, line {n}: the relation {rel!r} is not in {kg.name}")
            for x in (answer, start):
                if x not in e_ix:
                    raise DataError(f"{path}, line {n}: the entity {x!r} is not in {kg.name}")
            head = r_ix[rel] if query.startswith("inv_") else r_ix[rel] + kg.n_relations
            true = {kg.entities[j] for j in known.get((e_ix[start], head), [])}
            if answer not in true:
                raise DataError(
                    f"{path}, line {n}: {answer} is not a true answer of "
                    f"{query}({start}) in {kg.name}"
                )
            higher.append(len(set(preds[:-1]) - true - {answer}))
    if not higher:
        raise DataError(f"{path} holds no predictions")
    h = np.asarray(higher)
    m = metrics(h, np.zeros_like(h))
    return {"queries": m["queries"], **{k: m[k] for k in ("mrr", "hits@1", "hits@3", "hits@10")}}


# --- eval -------------------------------------------------------------------------------------


def run_eval(ecfg, rt) -> dict:
    if ecfg.predictions is not None:
        if rt.sources:
            kg = load_kg_run(rt.sources[0])[0]
        elif ecfg.data:
            kg = K.load(ecfg.data)
        else:
            raise UsageError("--predictions needs the knowledge graph: give a RUN or --data")
        return {
            "data": kg.name,
            "predictions": str(ecfg.predictions),
            **score_predictions(kg, ecfg.predictions),
        }
    if not rt.sources:
        raise UsageError("give a RUN folder to score (or --predictions FILE)")
    rt.out.log(f"scoring the {ecfg.split} split of {len(rt.sources)} run(s)")
    from . import rules as R

    rows, relations = [], []
    per_relation = ecfg.per_relation if ecfg.per_relation is not None else len(rt.sources) == 1
    for run in rt.sources:
        checkpoint = run.load()
        task = checkpoint[1].get("task")
        if task != "kg":
            from . import tasks

            rows.append(tasks.eval_run(run, task, checkpoint))
            continue
        kg, dist, s = load_kg_run(run, checkpoint)
        if len(kg.splits[ecfg.split]) == 0:
            raise DataError(f"{run.path}: the {ecfg.split} split is empty")
        result = R.evaluate(kg, dist, ecfg.split)
        rows.append(
            {
                "run": run_label(run),
                "data": kg.name,
                "model": f"{s.decomp}-{dist.rank} L{s.length}",
                **{k: result[k] for k in ("mrr", "hits@1", "hits@3", "hits@10")},
                "mrr_strict": result["mrr_strict"],
            }
        )
        if per_relation:
            relations += _per_relation(kg, result, run)
    out = {"runs": rows}
    if relations:
        out["relations"] = relations
    return out


def run_label(run) -> str:
    """A run folder as the user can name it: relative to here when it is below here."""
    import os

    path = Path(run.path).resolve()
    try:
        return os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)
    except ValueError:  # another drive
        return str(path)


def _per_relation(kg: K.KG, result: dict, run) -> list[dict]:
    from .rules import metrics

    rows = []
    heads = result["_q"][:, 1]
    for head in np.unique(heads).tolist():
        mask = heads == head
        m = metrics(result["_higher"][mask], result["_ties"][mask])
        rows.append(
            {
                "run": run.path.name,
                "query": kg.operator_name(head),
                "queries": m["queries"],
                **{k: m[k] for k in ("mrr", "hits@1", "hits@10")},
            }
        )
    return rows


# --- predict ----------------------------------------------------------------------------------


def _read_queries(path: Path, kg: K.KG) -> list[tuple[str, str, int, int]]:
    e_ix = {e: i for i, e in enumerate(kg.entities)}
    r_ix = {r: i for i, r in enumerate(kg.relations)}
    try:
        with open(path, newline="") as fh:
            rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not a text CSV ({exc})") from exc
    if rows and [c.strip().lower() for c in rows[0][:2]] in (
        ["entity", "relation"],
        ["head", "relation"],
    ):
        rows = rows[1:]
    if not rows:
        raise DataError(f"{path} holds no queries (one entity,relation pair per line)")
    out = []
    for n, row in enumerate(rows, 1):
        if len(row) != 2:
            raise DataError(
                f"{path}: query {n} needs 2 fields (entity, relation); it has {len(row)}"
            )
        e, r = (c.strip() for c in row)
        rel = r[4:] if r.startswith("inv_") else r
        if rel not in r_ix:
            raise DataError(
                f"{path}: query {n} asks for the relation {rel!r}, which {kg.name} "
                f"does not have (it has {', '.join(kg.relations[:6])}, ...)"
            )
        if e not in e_ix:
            raise DataError(
                f"{path}: query {n} names the entity {e!r}, which {kg.name} does not have"
            )
        head = r_ix[rel] + (kg.n_relations if r.startswith("inv_") else 0)
        out.append((e, r, e_ix[e], head))
    return out


def run_predict(pcfg, rt) -> dict:
    from . import rules as R

    if pcfg.queries is None:
        raise UsageError("give --queries FILE: a CSV of entity,relation pairs")
    kg, dist, s = load_kg_run(rt.source)
    queries = _read_queries(pcfg.queries, kg)
    q = np.array([[e, h] for _, _, e, h in queries], dtype=np.int64)
    scores = R.scores_for(kg, dist, q)
    heads = sorted({h for _, _, _, h in queries})
    rules = R.extract_rules(kg, dist, per_head=max(pcfg.rules, 1) * 10, heads=heads, stats=False)
    graph = {(int(h), int(r), int(t)) for h, r, t in kg.graph().tolist()}
    rows, every = [], []
    for (e_name, r_name, e, head), sc in zip(queries, scores):
        order = np.argsort(-sc, kind="stable")[: pcfg.top]
        fired = R.fired_rules(kg, e, [x for x in rules if x["head_id"] == head])
        for rank, y in enumerate(order.tolist(), 1):
            if sc[y] <= 0:
                break
            triple = (e, head, y) if head < kg.n_relations else (y, head - kg.n_relations, e)
            why = fired.get(y, [])
            query = f"{r_name}({e_name}, ?)"
            rows.append(
                {
                    "query": query,
                    "rank": rank,
                    "answer": kg.entities[y],
                    "score": round(float(sc[y]), 6),
                    "known": triple in graph,
                    "fired": len(why),
                    "p": round(why[0]["probability"], 4) if why else None,
                    "body": why[0]["rule"].split(" <- ", 1)[1] if why else "",
                }
            )
            every.append(
                " | ".join(f"{x['rule']} (p={x['probability']:.4f})" for x in why[: pcfg.rules])
            )
    rt.out.log(
        f"{len(queries)} queries, {len(rows)} answers; body: the most probable rule that "
        "fired (x the entity, y the answer)"
    )
    out = {"answers": rows}
    if pcfg.output is not None:
        _write_answers(pcfg.output, rows, every)
        out["output"] = str(pcfg.output)
    return out


def _write_answers(path: Path, rows: list[dict], every: list[str]) -> None:
    """The answers, each with the --rules most probable rules that fired."""
    import io

    buf = io.StringIO()
    fields = ["query", "rank", "answer", "score", "known", "fired", "rules"]
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    w.writerows({**row, "rules": why} for row, why in zip(rows, every))
    write_text(path, buf.getvalue())
