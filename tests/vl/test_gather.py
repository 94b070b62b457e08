"""The core's gather under torchrun: two CPU processes, gloo; rows in rank order, and the
gradient flows back to each rank's own rows (InfoNCE across ranks equals one process)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import torch

SCRIPT = textwrap.dedent(
    """
    import json, math, sys, torch
    import torch.distributed as td
    from mltk.device import init_distributed
    from mltk.vl.contrastive import info_nce
    dist = init_distributed(torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    img, txt = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    mine = slice(2 * dist.rank, 2 * dist.rank + 2)
    x = img[mine].clone().requires_grad_(True)
    rows = dist.gather(x)
    loss = info_nce(x, txt[mine], math.log(3.0), dist=dist)
    loss.backward()
    out = {"rank": dist.rank, "rows": rows.tolist(), "loss": loss.item(), "grad": x.grad.tolist()}
    open(sys.argv[1] + f"/rank{dist.rank}.json", "w").write(json.dumps(out))
    td.destroy_process_group()
    """
)


def test_two_processes_gather_in_rank_order_and_match_one_process(tmp_path):
    script = tmp_path / "gather.py"
    script.write_text(SCRIPT)
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         str(script), str(tmp_path)],
        capture_output=True, text=True, timeout=180, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    outs = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    g = torch.Generator().manual_seed(0)
    img, txt = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    for o in outs:
        torch.testing.assert_close(torch.tensor(o["rows"]), img)  # every rank sees every row
    # one process with the whole batch: the mean over ranks of the per-rank losses is its loss,
    # and each rank's gradient (times the world size) is the whole batch's on its rows
    from mltk.vl.contrastive import info_nce

    x = img.clone().requires_grad_(True)
    whole = info_nce(x, txt, torch.log(torch.tensor(3.0)))
    whole.backward()
    assert abs(sum(o["loss"] for o in outs) / 2 - whole.item()) < 1e-5
    grads = torch.cat([torch.tensor(o["grad"]) for o in outs])
    torch.testing.assert_close(grads / 2, x.grad, rtol=1e-4, atol=1e-6)
