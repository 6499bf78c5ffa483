#!/usr/bin/env python3
"""PyTorch eager peer of KdKernelSuite: the same KD forward + backward, timed the same way.

    loss = T^2 * kl_div(log_softmax(s / T), log_softmax(t / T), log_target=True, reduction="batchmean")
    loss.backward()                      # d loss / d s, what our fused kernel writes

For every rows x vocabulary x dtype: median / min / max milliseconds over --iters runs after --warmup
(CUDA events around forward + backward, each run started on a busy device as the suite starts its own:
torch.cuda._sleep spins about as long as the suite's spin_cycles while the host records the start event and
queues the step, so the events time the device's kernels, not Python's dispatch), achieved bandwidth counted like ours (3 N V element bytes: read
s and t, write the gradient), its fraction of --copy-gbps (the suite's measured copy bandwidth), and the device
memory one step takes, measured as the suite measures its own (device_bytes_measured: the drop in the driver's
free memory, torch.cuda.mem_get_info, from before the first set of inputs, the cache emptied, to after one step on
it; what torch's caching allocator reserved for it, rounding included). As in the suite, the runs rotate through
sets of inputs that add up to at least 256 MiB or 4 x the device's L2 cache (input_sets; each set's s, t and
gradient counted at 128-byte lines), so that each run reads its inputs from device memory, not from L2 (the
gradient is autograd's own, reused from torch's cache). A shape that fails (out of memory, anything else) is
recorded in its row (status "failed: <reason>", empty times) and the others still run; the script then exits 1.
Each row is appended to the suite's CSV (same columns) as soon as it is measured:

    python3 benchmarks/gpu/torch_kd.py --out torch.csv --copy-gbps 3000 [--rows 4096,16384]
        [--vocab 10,32000,128256,152064] [--dtype f32,bf16] [--iters 20] [--warmup 5] [--temperature 2]
"""
import argparse
import statistics
import sys

SPIN_CYCLES = 2_000_000  # KdKernelSuite.SPIN_CYCLES
SET_ALIGN = 128  # KdKernelSuite.SET_ALIGN
ELEMENT_BYTES = {"f32": 4, "bf16": 2}


def rotation_bytes(l2):
    """KdKernelSuite.rotationBytes: 256 MiB, or 4 x the L2 cache where that is more."""
    return max(256 << 20, 4 * l2)


def input_sets(footprint, l2):
    """KdKernelSuite.inputSets: sets of footprint bytes adding up to rotation_bytes(l2); one where a set is that large."""
    total = rotation_bytes(l2)
    return 1 if footprint >= total else -(-total // footprint)


def set_footprint(n, v, dname):
    """Bytes of one set (s, t and the gradient) at 128-byte lines."""
    b = n * v * ELEMENT_BYTES[dname]
    return 3 * (-(-b // SET_ALIGN) * SET_ALIGN)


def failed_row(dname, n, v, reason):
    text = "failed: " + " ".join(reason.split())
    return "torch-eager,%s,%d,%d,,,,,,,,,\"%s\"" % (dname, n, v, text.replace('"', '""'))


def reason(e):
    if "out of memory" in str(e).lower():
        return "out of memory"
    return ("%s: %s" % (type(e).__name__, " ".join(str(e).split())))[:300]


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
    for d in a.dtype.split(","):
        if d not in ELEMENT_BYTES:
            ap.error("--dtype takes f32 and bf16, got %r" % d)
    import torch  # here, so that the helpers above load without it

    dtypes = {"f32": torch.float32, "bf16": torch.bfloat16}
    T = a.temperature
    l2 = getattr(torch.cuda.get_device_properties(0), "L2_cache_size", 0)
    print("torch %s on %s; L2 cache %.1f MiB: inputs rotated through sets of at least %d bytes in all"
          % (torch.__version__, torch.cuda.get_device_name(0), l2 / 2 ** 20, rotation_bytes(l2)), flush=True)
    failed = []
    with open(a.out, "a") as f:
        for dname in a.dtype.split(","):
            dt = dtypes[dname]
            for n in map(int, a.rows.split(",")):
                for v in map(int, a.vocab.split(",")):
                    sets = input_sets(set_footprint(n, v, dname), l2)
                    try:
                        line = shape(torch, a, dname, dt, n, v, sets, T)
                    except Exception as e:  # out of memory or anything else: this row says why, the others still run
                        line = failed_row(dname, n, v, reason(e))
                        failed.append("%s %d x %d: %s" % (dname, n, v, reason(e)))
                    try:
                        torch.cuda.empty_cache()
                    except Exception:  # a spoiled CUDA context raises on every call: the next shape's row says so, not a traceback
                        pass
                    print(line, flush=True)
                    f.write(line + "\n")
                    f.flush()  # each row as it is measured: a run stopped by a time limit keeps what it had
    if failed:
        print("torch_kd.py: %d row(s) failed: %s" % (len(failed), "; ".join(failed)), file=sys.stderr)
        sys.exit(1)


def shape(torch, a, dname, dt, n, v, sets, T):
    """One shape's row: set 0 made and stepped on once to measure the memory a step takes, the other sets after it."""
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    free0 = torch.cuda.mem_get_info()[0]
    g = torch.Generator(device="cuda").manual_seed(n * 31 + v)

    def make():
        s = ((torch.rand(n, v, device="cuda", generator=g) * 8 - 4).to(dt)).requires_grad_()
        t = (torch.rand(n, v, device="cuda", generator=g) * 8 - 4).to(dt)
        return s, t

    ss, ts = [], []
    try:
        s0, t0 = make()
        ss.append(s0)
        ts.append(t0)
        step(s0, t0, T)
        torch.cuda.synchronize()
        measured = free0 - torch.cuda.mem_get_info()[0]
        s0.grad = None
        for _ in range(sets - 1):
            s, t = make()
            ss.append(s)
            ts.append(t)
        times = []
        run(a, ss, ts, sets, T, times)
    finally:
        del ss, ts
    ms = statistics.median(times)
    elem = ELEMENT_BYTES[dname]
    gbps = 3 * n * v * elem / (ms * 1e-3) / 1e9
    return "torch-eager,%s,%d,%d,%.4f,%.4f,%.4f,%.2f,%.3f,%d,,%d,ok" % (dname, n, v, ms, min(times), max(times), gbps,
                                                                        gbps / a.copy_gbps, measured, sets)


def step(s, t, T):
    import torch.nn.functional as F

    loss = F.kl_div(F.log_softmax(s / T, dim=-1), F.log_softmax(t / T, dim=-1), log_target=True,
                    reduction="batchmean") * (T * T)
    loss.backward()


def run(a, ss, ts, copies, T, times):
    import torch

    for it in range(a.warmup + a.iters):
        s, t = ss[it % copies], ts[it % copies]
        s.grad = None
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda._sleep(SPIN_CYCLES)
        start.record()
        step(s, t, T)
        end.record()
        end.synchronize()
        if it >= a.warmup:
            times.append(start.elapsed_time(end))
        # freed before the next run: with inputs rotated through copies, each copy's gradient would otherwise stay
        # allocated until that copy's next turn, and the peak would count up to copies - 1 stale gradients
        s.grad = None


if __name__ == "__main__":
    main()
