#!/usr/bin/python3
"""The same-machine PyTorch peer of `nq bench train --arch gpt2-small`: one LoRA training step of GPT-2 small.

Plain PyTorch (no transformers/peft packages; Debian's python3-torch 1.13): GPT-2 small (12 layers, n_embd 768,
12 heads, vocab 50257, 1024 positions, LayerNorm eps 1e-5, GELU tanh, Conv1D-style [in, out] weights, head tied to
wte), weights seeded N(0, 0.02) (biases 0, LayerNorm 1/0), no dropout (ours has none either). The base is frozen;
LoRA r=8, alpha 16 on every c_attn as PEFT (A (r, in) kaiming-uniform(a=sqrt(5)), B (out, r) zeros, y += x A^T B^T
* alpha/r, lora_dropout 0). One random 256-token sequence; causal-LM cross-entropy of positions 0..254 predicting
tokens 1..255 (the head runs on those 255 rows only, as `nq bench train` does); AdamW (lr 1e-4) on the LoRA
parameters. Attention is HF GPT2Attention's matmul + causal mask + softmax (torch 1.13 has no fused SDPA).

    /usr/bin/python3 tests/reference/bench_torch_lora.py            # all four configurations, one process each
    /usr/bin/python3 tests/reference/bench_torch_lora.py --dtype bf16 --checkpointing off --steps 5

--dtype bf16 runs forward and loss under torch.autocast("cpu", bfloat16) (weights stay fp32, cast per op);
--checkpointing on wraps each block in torch.utils.checkpoint (reentrant, with the embedding output requiring grad,
as PEFT's enable_input_require_grads). Each configuration runs in a fresh process, because peak RSS (ru_maxrss) is
process-wide; the parent prints one JSON line per configuration and a table. Timing: warm-up steps, then the median
of N steps (perf_counter), split into forward (incl. loss), backward and optimizer, and the process CPU time per
step (time.process_time: all threads; the comparable number on a shared machine).
"""
import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time

# libgomp's default active waiting spins torch's idle OpenMP workers, which on a shared machine starves everything
# else (bf16 without checkpointing: 16 tok/s spinning vs 109 passive at load 10-13); our engine defaults to passive
# waiting too (OpenMpPolicy). Must be set before torch loads libgomp.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint

VOCAB, POSITIONS, EMBD, LAYERS, HEADS = 50257, 1024, 768, 12, 12
EPS = 1e-5


def rss_mib():
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class Conv1D(nn.Module):
    """HF's Conv1D: y = x @ W + b, W (in, out)."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out).normal_(0.0, 0.02))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        return torch.addmm(self.bias, x.reshape(-1, x.size(-1)), self.weight).view(*x.shape[:-1], -1)


class LoraConv1D(nn.Module):
    """PEFT's lora.Linear around a Conv1D (fan_in_fan_out): base(x) + (x A^T) B^T * scaling."""

    def __init__(self, base, r, alpha):
        super().__init__()
        self.base_layer = base
        n_in, n_out = base.weight.shape
        self.lora_A = nn.Linear(n_in, r, bias=False)
        self.lora_B = nn.Linear(r, n_out, bias=False)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.scaling = alpha / r

    def forward(self, x):
        return self.base_layer(x) + self.lora_B(self.lora_A(x)) * self.scaling


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1 = nn.LayerNorm(EMBD, eps=EPS)
        self.c_attn = Conv1D(EMBD, 3 * EMBD)
        self.c_proj = Conv1D(EMBD, EMBD)
        self.ln_2 = nn.LayerNorm(EMBD, eps=EPS)
        self.c_fc = Conv1D(EMBD, 4 * EMBD)
        self.mlp_proj = Conv1D(4 * EMBD, EMBD)

    def attention(self, x, mask):
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=2)
        q, k, v = (z.view(b, t, HEADS, c // HEADS).transpose(1, 2) for z in (q, k, v))  # (B, H, T, D)
        w = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(c // HEADS)
        w = torch.where(mask, w, torch.tensor(torch.finfo(w.dtype).min, dtype=w.dtype))
        y = torch.matmul(F.softmax(w, dim=-1).type(v.dtype), v)
        return self.c_proj(y.transpose(1, 2).reshape(b, t, c))

    def forward(self, x, mask):
        h = x + self.attention(self.ln_1(x), mask)
        return h + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(h)), approximate="tanh"))


class GPT2(nn.Module):
    def __init__(self, checkpointing):
        super().__init__()
        self.wte = nn.Embedding(VOCAB, EMBD)
        self.wpe = nn.Embedding(POSITIONS, EMBD)
        nn.init.normal_(self.wte.weight, 0.0, 0.02)
        nn.init.normal_(self.wpe.weight, 0.0, 0.02)
        self.h = nn.ModuleList(Block() for _ in range(LAYERS))
        self.ln_f = nn.LayerNorm(EMBD, eps=EPS)
        self.checkpointing = checkpointing

    def loss(self, ids):
        t = ids.size(1)
        mask = torch.tril(torch.ones(t, t, dtype=torch.bool)).view(1, 1, t, t)
        h = self.wte(ids) + self.wpe(torch.arange(t).unsqueeze(0))
        if self.checkpointing:
            h.requires_grad_(True)  # reentrant checkpoint backpropagates only into inputs that require grad
        for block in self.h:
            h = torch.utils.checkpoint.checkpoint(block, h, mask) if self.checkpointing else block(h, mask)
        h = self.ln_f(h)[:, :-1]                       # (B, T-1, C): positions that have a next token
        logits = F.linear(h, self.wte.weight)          # tied head, (B, T-1, V)
        return F.cross_entropy(logits.reshape(-1, VOCAB).float(), ids[:, 1:].reshape(-1))


def run(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = GPT2(args.checkpointing == "on")
    for p in model.parameters():
        p.requires_grad_(False)
    for block in model.h:
        block.c_attn = LoraConv1D(block.c_attn, args.lora_r, 2 * args.lora_r)
    model.train()
    lora = [p for n, p in model.named_parameters() if "lora_" in n]
    opt = torch.optim.AdamW(lora, lr=1e-4)
    ids = torch.randint(0, VOCAB, (1, args.seq), generator=torch.Generator().manual_seed(args.seed))
    build_rss = rss_mib()

    fwd, bwd, opt_ms, stp, cpu, loss_value = [], [], [], [], [], None
    for i in range(args.warmup + args.steps):
        c0, t0 = time.process_time(), time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.dtype == "bf16"):
            loss = model.loss(ids)
        loss_value = loss.item()
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        opt.zero_grad(set_to_none=True)
        t3, c3 = time.perf_counter(), time.process_time()
        if i >= args.warmup:
            fwd.append(t1 - t0)
            bwd.append(t2 - t1)
            opt_ms.append(t3 - t2)
            stp.append(t3 - t0)
            cpu.append(c3 - c0)
        del loss
    step = statistics.median(stp)
    return {
        "dtype": args.dtype, "checkpointing": args.checkpointing, "seq": args.seq, "threads": args.threads,
        "steps": args.steps, "tokens_per_second": args.seq / step, "step_ms": step * 1e3,
        "forward_ms": statistics.median(fwd) * 1e3, "backward_ms": statistics.median(bwd) * 1e3,
        "optimizer_ms": statistics.median(opt_ms) * 1e3, "step_cpu_ms": statistics.median(cpu) * 1e3,
        "loss": loss_value, "trainable_parameters": sum(p.numel() for p in lora),
        "peak_rss_mib": rss_mib(), "build_rss_mib": build_rss, "torch": torch.__version__,
        "omp_wait_policy": os.environ["OMP_WAIT_POLICY"], "load_average": open("/proc/loadavg").read().strip(),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dtype", choices=["fp32", "bf16"])
    ap.add_argument("--checkpointing", choices=["on", "off"])
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--lora-r", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    if args.dtype and args.checkpointing:
        print(json.dumps(run(args)), flush=True)
        return
    # Fresh process per configuration: ru_maxrss never goes down.
    rows = []
    for dtype in [args.dtype] if args.dtype else ["fp32", "bf16"]:
        for ckpt in [args.checkpointing] if args.checkpointing else ["on", "off"]:
            cmd = [sys.executable, os.path.abspath(__file__), "--dtype", dtype, "--checkpointing", ckpt,
                   "--seq", str(args.seq), "--lora-r", str(args.lora_r), "--threads", str(args.threads),
                   "--warmup", str(args.warmup), "--steps", str(args.steps), "--seed", str(args.seed)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
            print(out, flush=True)
            rows.append(json.loads(out))
    print(f"{'dtype':5} {'ckpt':4} {'tok/s':>7} {'step ms':>8} {'fwd':>7} {'bwd':>7} {'opt':>5} {'CPU ms':>7} {'peak RSS MiB':>12}  load")
    for r in rows:
        print(f"{r['dtype']:5} {r['checkpointing']:4} {r['tokens_per_second']:7.1f} {r['step_ms']:8.0f} "
              f"{r['forward_ms']:7.0f} {r['backward_ms']:7.0f} {r['optimizer_ms']:5.1f} {r['step_cpu_ms']:7.0f} {r['peak_rss_mib']:12.0f}  "
              f"{r['load_average']}")


if __name__ == "__main__":
    main()
