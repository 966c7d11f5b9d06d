"""Micro-benchmarks of the model layer (not a test): forward+backward milliseconds.

    python -m spin_bench.perf.micro [--what critics,heads,adam,actors,asm,dropout,attention] [--device cpu] [--threads 1]

Each case is timed in interleaved rounds and the median is reported (shared CI machines are noisy).
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from spin_bench.models.common import synchronize


def timeit(cases: dict[str, Callable[[], None]], device: torch.device, iters: int = 30, rounds: int = 5,
           warmup: int = 5) -> dict[str, float]:
    """Median over ``rounds`` of the mean ms per call over ``iters`` calls, cases interleaved."""
    for fn in cases.values():
        for _ in range(warmup):
            fn()
    res: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(rounds):
        for k, fn in cases.items():
            synchronize(device)
            t = time.perf_counter()
            for _ in range(iters):
                fn()
            synchronize(device)
            res[k].append((time.perf_counter() - t) / iters * 1e3)
    return {k: statistics.median(v) for k, v in res.items()}


def bench_critics(device: torch.device) -> None:
    from torch.func import functional_call, stack_module_state, vmap

    from spin_bench.models.critics import FactoredCriticEnsemble
    e, hdim = 2, 256
    for b, d, n, k in [(256, 17, 6, 3), (256, 223, 38, 3)]:
        x = torch.randn(b, d, device=device)
        a = torch.randint(0, k, (b, n), device=device)
        crit = FactoredCriticEnsemble(d, [k] * n, e).to(device)
        o = n * k
        w0c = torch.randn(d, e * hdim, device=device, requires_grad=True)
        b0c = torch.zeros(e * hdim, device=device, requires_grad=True)
        ws = [l.weight for l in crit.layers]
        bs = [l.bias for l in crit.layers]
        nets = [nn.Sequential(nn.Linear(d, hdim), nn.ReLU(), nn.Linear(hdim, hdim), nn.ReLU(),
                              nn.Linear(hdim, o)).to(device) for _ in range(e)]
        params, bufs = stack_module_state(nets)
        base = copy.deepcopy(nets[0]).to("meta")

        def q_of(u):
            return crit.gather_q(u.view(e, b, n, k), a).sum()

        def baddbmm():  # the implementation in critics.py
            crit.q(x, a).sum().backward()

        def concat_first():
            h = F.relu(torch.addmm(b0c, x, w0c)).view(b, e, hdim).transpose(0, 1)
            h = F.relu(torch.baddbmm(bs[1], h, ws[1]))
            q_of(torch.baddbmm(bs[2], h, ws[2])).backward()

        def einsum():
            h = F.relu(torch.einsum("bd,edh->ebh", x, ws[0]) + bs[0])
            h = F.relu(torch.einsum("ebh,ehk->ebk", h, ws[1]) + bs[1])
            q_of(torch.einsum("ebh,eho->ebo", h, ws[2]) + bs[2]).backward()

        def vmapped():
            u = vmap(lambda p, bb, xx: functional_call(base, (p, bb), (xx,)), in_dims=(0, 0, None))(params, bufs, x)
            q_of(u).backward()

        def python_loop():
            q_of(torch.stack([net(x) for net in nets])).backward()

        r = timeit(dict(baddbmm=baddbmm, concat_first=concat_first, einsum=einsum, vmap=vmapped,
                        python_loop=python_loop), device)
        print(f"critics E={e} B={b} obs={d} N={n} bins={k}: " + ", ".join(f"{k_}={v:.2f}ms" for k_, v in r.items()))


def bench_heads(device: torch.device) -> None:
    for b, n, d, h, o in [(256, 6, 256, 128, 3), (256, 38, 256, 128, 3), (256, 38, 64, 64, 3)]:
        x = torch.randn(b, n, d, device=device, requires_grad=True)
        w1 = torch.randn(n, d, h, device=device, requires_grad=True)
        b1 = torch.randn(n, 1, h, device=device, requires_grad=True)
        w2 = torch.randn(n, h, o, device=device, requires_grad=True)
        b2 = torch.randn(n, 1, o, device=device, requires_grad=True)

        def baddbmm():  # SlotHeads
            t = F.gelu(torch.baddbmm(b1, x.transpose(0, 1), w1))
            torch.baddbmm(b2, t, w2).transpose(0, 1).sum().backward()

        def einsum():
            t = F.gelu(torch.einsum("bnd,ndh->bnh", x, w1) + b1.squeeze(1))
            (torch.einsum("bnh,nho->bno", t, w2) + b2.squeeze(1)).sum().backward()

        r = timeit(dict(baddbmm=baddbmm, einsum=einsum), device)
        print(f"slot heads B={b} N={n} d={d} h={h}: " + ", ".join(f"{k}={v:.2f}ms" for k, v in r.items()))


def bench_adam(device: torch.device) -> None:
    from spin_bench.models.asm import ActionStructureModel
    for dm in (64, 256):
        m = ActionStructureModel(17, [3] * 6, d_model=dm).to(device)
        for p in m.parameters():
            p.grad = torch.randn_like(p)
        opts = {"foreach": torch.optim.Adam(m.parameters(), foreach=True)}
        try:
            opts["fused"] = torch.optim.Adam(m.parameters(), fused=True)
        except (RuntimeError, TypeError) as exc:  # pragma: no cover
            print("fused Adam unavailable:", exc)
        r = timeit({k: o.step for k, o in opts.items()}, device)
        print(f"Adam step, ASM d_model={dm}: " + ", ".join(f"{k}={v:.2f}ms" for k, v in r.items()))


def bench_dropout(device: torch.device) -> None:
    """``common.dropout`` (16-bit mask on the CPU) vs ``F.dropout``, forward + backward, at the
    transformer activations of the cpu scale (B 256, 7 tokens, widths 64 and 128)."""
    from spin_bench.models.common import dropout
    for shape in [(256, 7, 64), (256, 7, 128), (256, 13, 128)]:
        x = torch.randn(*shape, device=device, requires_grad=True)
        r = timeit(dict(common_dropout=lambda: dropout(x, 0.1, True).sum().backward(),
                        F_dropout=lambda: F.dropout(x, 0.1, True).sum().backward(),
                        no_dropout=lambda: (x * 1.0).sum().backward()), device)
        print(f"dropout p=0.1 {tuple(shape)}: " + ", ".join(f"{k}={v:.3f}ms" for k, v in r.items()))
    # the cpu scale's encoder (d_model 64, 2 blocks, train mode) with each dropout in its blocks
    from unittest import mock

    from spin_bench.models import transformer
    enc = transformer.TransformerEncoder(64, 4, 2, 0.1).to(device).train()
    for tokens in (7, 13):
        x = torch.randn(256, tokens, 64, device=device, requires_grad=True)

        def with_f_dropout() -> None:
            with mock.patch.object(transformer, "dropout", F.dropout):
                enc(x).sum().backward()
        r = timeit(dict(common_dropout=lambda: enc(x).sum().backward(), F_dropout=with_f_dropout), device)
        print(f"encoder d64 x2 blocks fwd+bwd (256, {tokens}, 64): "
              + ", ".join(f"{k}={v:.2f}ms" for k, v in r.items()))


def bench_attention(device: torch.device) -> None:
    """One TransformerBlock (d_model 64, 4 heads) forward+backward, train and eval mode, with the
    block-diagonal CPU attention vs ``F.scaled_dot_product_attention``, by sequence length."""
    from unittest import mock

    from spin_bench.models import transformer
    block = transformer.TransformerBlock(64, 4, 0.1).to(device)
    for b, length in [(256, 3), (256, 7), (256, 9), (256, 13), (1024, 7)]:
        x = torch.randn(b, length, 64, device=device, requires_grad=True)
        for mode in ("train", "eval"):
            block.train(mode == "train")

            def sdpa() -> None:
                with mock.patch.object(transformer, "BLOCK_DIAGONAL_MAX", 0):
                    block(x).sum().backward()

            def block_diagonal() -> None:
                with mock.patch.object(transformer, "BLOCK_DIAGONAL_MAX", 10**9):
                    block(x).sum().backward()
            r = timeit(dict(block_diagonal=block_diagonal, sdpa=sdpa), device, iters=10)
            print(f"block d64 H4 fwd+bwd {mode} (B {b}, L {length}, H*L {4 * length}): "
                  + ", ".join(f"{k}={v:.2f}ms" for k, v in r.items()))


def bench_actors(device: torch.device) -> None:
    from spin_bench.baselines import AutoregressiveActor, FactorisedMLPActor
    from spin_bench.models.actors import TransformerActor
    from spin_bench.models.asm import ActionStructureModel
    from spin_bench.models.common import adam_kwargs
    from spin_bench.models.spin import make_spin_actor
    for name, d, n in [("cheetah", 17, 6), ("dog", 223, 38)]:
        bins = [3] * n
        obs = torch.randn(256, d, device=device)
        acts = torch.randint(0, 3, (256, n), device=device)
        cases = {}
        for dm in (64, 256):
            asm = ActionStructureModel(d, bins, d_model=dm, head_hidden=min(128, 2 * dm))
            actors = {f"saint_d{dm}": TransformerActor(d, bins, d_model=dm),
                      f"spin_d{dm}": make_spin_actor(d, bins, asm)}
            for k, actor in actors.items():
                actor.to(device).train()
                opt = torch.optim.Adam(actor.trainable_parameters(), **adam_kwargs(device))
                cases[k] = _nll_step(actor, opt, obs, acts)
        for k, actor in {"mlp": FactorisedMLPActor(d, bins), "ar_lstm": AutoregressiveActor(d, bins)}.items():
            actor.to(device).train()
            opt = torch.optim.Adam(actor.parameters(), **adam_kwargs(device))
            cases[k] = _nll_step(actor, opt, obs, acts)
        r = timeit(cases, device, iters=10, rounds=3)
        print(f"actor train step (B=256, -log_prob, Adam) {name}: " + ", ".join(f"{k}={v:.1f}ms" for k, v in r.items()))


def _nll_step(actor, opt, obs: torch.Tensor, acts: torch.Tensor) -> Callable[[], None]:
    """One Adam step on -log pi(a|s) of the given batch."""
    def step() -> None:
        loss = -actor.log_prob(obs, acts).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def bench_asm(device: torch.device) -> None:
    from spin_bench.models.asm import ActionStructureModel, masked_action_modelling_loss
    from spin_bench.models.common import adam_kwargs
    for name, d, n in [("cheetah", 17, 6), ("dog", 223, 38)]:
        cases = {}
        for dm in (64, 256):
            m = ActionStructureModel(d, [3] * n, d_model=dm).to(device)
            opt = torch.optim.Adam(m.parameters(), **adam_kwargs(device))
            obs = torch.randn(1024, d, device=device)
            a = torch.randint(0, 3, (1024, n), device=device)
            g = torch.Generator(device=device).manual_seed(0)

            def step(m=m, opt=opt, obs=obs, a=a, g=g):
                loss, _ = masked_action_modelling_loss(m, obs, a, g)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(list(m.parameters()), 1.0, foreach=True)
                opt.step()
            cases[f"d{dm}"] = step
        r = timeit(cases, device, iters=3, rounds=3, warmup=2)
        print(f"ASM MAM step (B=1024) {name}: " + ", ".join(f"{k}={v:.0f}ms" for k, v in r.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--what", default="critics,heads,adam,actors,asm,dropout,attention")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    fns = dict(critics=bench_critics, heads=bench_heads, adam=bench_adam, actors=bench_actors, asm=bench_asm,
               dropout=bench_dropout, attention=bench_attention)
    for w in args.what.split(","):
        fns[w](device)


if __name__ == "__main__":
    main()
