"""`mltk trace`: tensorised supernet search (TRACE, arXiv:2101.01078): a distribution over
architectures whose tensor network follows the supernet (a tensor train along a chain), for rule
chains on knowledge graphs, meta-paths on heterogeneous graphs and DARTS-like cells.

Imported on every `mltk` call: only the standard library and light core modules at the top;
numpy, torch and the method are imported inside the verbs.
"""

from __future__ import annotations

from mltk.hookspecs import hookimpl
from mltk.verbs import Plugin

from .config import EvalConfig, PredictConfig, RulesConfig, SearchConfig, check

plugin = Plugin(
    "trace",
    help="Learn a distribution over a supernet's architectures as a tensor network that "
    "follows its topology: interpretable rules from a knowledge graph, meta-paths from a "
    "heterogeneous graph, or a DARTS-like cell; tensor train against CP and independent "
    "choices.",
    summary="Tensorised supernet search: rules, meta-paths, cells (TRACE, arXiv:2101.01078).",
)


@plugin.verb(
    config=RulesConfig,
    run="new",
    check=check,
    examples=[
        "mltk trace rules",
        "mltk trace rules --data family --decomp independent --epochs 2",
        "mltk trace rules --data my_kg/ --length 2 --rank 8",
        "mltk trace rules --data triples.tsv --split 0.8,0.1,0.1",
    ],
)
def rules(cfg: RulesConfig, rt) -> dict:
    """Learn rule chains on a knowledge graph, score the test queries (filtered MRR and Hits@k)
    and write rules.tsv: the most probable rules of each relation with their probability,
    support and confidence on the graph.
    """
    from .commands import run_search

    return run_search(cfg, rt, task="kg")


@plugin.verb(
    config=SearchConfig,
    run="new",
    check=check,
    aliases=("train",),
    examples=[
        "mltk trace search --task hin",
        "mltk trace search --task hin --decomp independent",
        "mltk trace search --task nas --epochs 5",
        "mltk trace search --task nas --data cifar-10-binary.tar.gz --device cuda",
    ],
)
def search(cfg: SearchConfig, rt) -> dict:
    """Search a supernet: rule chains (kg), meta-paths (hin) or a cell (nas). Writes the run
    folder with the distribution's cores and what it found."""
    from .commands import run_search

    return run_search(cfg, rt, task=cfg.task)


@plugin.verb(
    config=EvalConfig,
    name="eval",
    run="read*",
    examples=[
        "mltk trace eval runs/trace/rules",
        "mltk trace eval runs/tt runs/cp runs/independent",
        "mltk trace eval --predictions test_predictions.txt --data kinship",
    ],
)
def eval_(cfg: EvalConfig, rt) -> dict:
    """Score runs again: MRR and Hits@1/3/10 per direction and relation (rules), Macro-F1
    (meta-paths), test accuracy (cells); one row per run folder."""
    from .commands import run_eval

    return run_eval(cfg, rt)


@plugin.verb(
    config=PredictConfig,
    run="read",
    examples=[
        "mltk trace predict runs/trace/rules --queries queries.csv",
        "mltk trace predict runs/trace/rules --queries queries.csv --json",
    ],
)
def predict(cfg: PredictConfig, rt) -> dict:
    """Answers to (entity, relation, ?) queries from a CSV, each with the rules that fired."""
    from .commands import run_predict

    return run_predict(cfg, rt)


@hookimpl
def mltk_register_commands(register):
    register("trace", plugin)


@hookimpl
def mltk_register_datasets(register):
    sizes = {
        "family": "3,007 people, 12 relations",
        "kinship": "104 people, 25 relations",
        "umls": "135 medical concepts, 46 relations",
    }
    for name, size in sizes.items():
        register(
            name,
            loader=f"mltk_plugins.trace.kg:load_{name}",
            description=f"knowledge graph ({size}), Neural-LP's facts/train/valid/test split",
            embedded=True,
        )
