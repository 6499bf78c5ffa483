#!/usr/bin/env python3
"""PyTorch eager peer of KdKernelSuite: the same KD forward + backward, timed the same way.

    loss = T^2 * kl_div(log_softmax(s / T), log_softmax(t / T), log_target=True, reduction="batchmean")
    loss.backward()                      # d loss / d s, what our fused kernel writes

For every rows x vocabulary x dtype: median / min / max milliseconds over --iters runs after --warmup
(CUDA events around forward + backward, each run started on a busy device as the suite starts its own:
torch.cuda._sleep spins about as long as the suite's spin_cycles while the host records the start event and
queues the step, so the events time the device's kernels, not Python's dispatch), achieved bandwidth counted like ours (3 N V element bytes: read
s and t, write the gradient), its fraction of --copy-gbps (the suite's measured copy bandwidth), and the
peak device memory the step allocates beyond its inputs (torch.cuda.max_memory_allocated). Appends rows
to the suite's CSV format:

    python3 benchmarks/gpu/torch_kd.py --out torch.csv --copy-gbps 3000 [--rows 4096,16384]
        [--vocab 10,32000,128256,152064] [--dtype f32,bf16] [--iters 20] [--warmup 5] [--temperature 2]
"""
import argparse
import statistics

import torch
import torch.nn.functional as F

SPIN_CYCLES = 2_000_000  # KdKernelSuite.SPIN_CYCLES


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--copy-gbps", type=float, required=True)
    ap.add_argument("--rows", default="4096,16384")
    ap.add_argument("--vocab", default="10,32000,128256,152064")
    ap.add_argument("--dtype", default="f32,bf16")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--temperature", type=float, default=2.0)
    ap.add_argument("--methods", help="the Java suite's option (device-run.sh passes every option to both); ignored here")
    a = ap.parse_args()
    if a.iters < 1 or a.warmup < 0:
        ap.error("--iters takes 1 or more and --warmup 0 or more, got %d and %d" % (a.iters, a.warmup))
    dtypes = {"f32": torch.float32, "bf16": torch.bfloat16}
    T = a.temperature
    lines = []
    for dname in a.dtype.split(","):
        dt = dtypes[dname]
        for n in map(int, a.rows.split(",")):
            for v in map(int, a.vocab.split(",")):
                set_bytes = 3 * n * v * torch.tensor([], dtype=dt).element_size()
                copies = max(1, min(16, (256 << 20) // max(1, set_bytes)))
                g = torch.Generator(device="cuda").manual_seed(n * 31 + v)
                ss = [((torch.rand(n, v, device="cuda", generator=g) * 8 - 4).to(dt)).requires_grad_() for _ in range(copies)]
                ts = [(torch.rand(n, v, device="cuda", generator=g) * 8 - 4).to(dt) for _ in range(copies)]
                torch.cuda.synchronize()
                base = torch.cuda.memory_allocated()
                torch.cuda.reset_peak_memory_stats()
                times = []
                try:
                    run(a, ss, ts, copies, T, times)
                except torch.cuda.OutOfMemoryError:
                    line = "torch-eager,%s,%d,%d,oom,oom,oom,,,%d" % (dname, n, v, torch.cuda.max_memory_allocated() - base)
                    print(line, flush=True)
                    lines.append(line)
                    del ss, ts
                    torch.cuda.empty_cache()
                    continue
                peak = torch.cuda.max_memory_allocated() - base
                ms = statistics.median(times)
                elem = torch.tensor([], dtype=dt).element_size()
                gbps = 3 * n * v * elem / (ms * 1e-3) / 1e9
                inputs = 2 * n * v * elem  # one set of s and t, as the suite counts them
                line = "torch-eager,%s,%d,%d,%.4f,%.4f,%.4f,%.2f,%.3f,%d" % (dname, n, v, ms, min(times), max(times), gbps,
                                                                          gbps / a.copy_gbps, inputs + peak)
                print(line, flush=True)
                lines.append(line)
                del ss, ts
                torch.cuda.empty_cache()
    with open(a.out, "a") as f:
        for line in lines:
            f.write(line + "\n")


def run(a, ss, ts, copies, T, times):
    for it in range(a.warmup + a.iters):
        s, t = ss[it % copies], ts[it % copies]
        s.grad = None
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda._sleep(SPIN_CYCLES)
        start.record()
        loss = F.kl_div(F.log_softmax(s / T, dim=-1), F.log_softmax(t / T, dim=-1), log_target=True,
                        reduction="batchmean") * (T * T)
        loss.backward()
        end.record()
        end.synchronize()
        if it >= a.warmup:
            times.append(start.elapsed_time(end))
        del loss
        # freed before the next run: with inputs rotated through copies, each copy's gradient would otherwise stay
        # allocated until that copy's next turn, and the peak would count up to copies - 1 stale gradients
        s.grad = None


if __name__ == "__main__":
    main()
