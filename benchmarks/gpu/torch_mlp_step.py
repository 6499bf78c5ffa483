#!/usr/bin/env python3
"""PyTorch peer of the whole-distillation-step GPU benchmark (issue #6): the demo's models, one step timed.

    teacher 784-1200-1200-10, student 784-400-400-10: ReLU hidden layers, identity output (logits)
    with torch.no_grad(): t = teacher(x)          # eval mode (no dropout), forward only
    s = student(x)
    loss = alpha * cross_entropy(s, y)
         + (1 - alpha) * T^2 * kl_div(log_softmax(s / T), log_softmax(t / T), log_target=True, reduction="batchmean")
    loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)      # Adam lr 1e-3, betas (0.9, 0.999), eps 1e-8

That is KL(softmax(t / T) || softmax(s / T)), T = 4, alpha = 0.1, as the demo uses it. One step is all of the
above. The batch (float32 features in [0, 1), [batch, 784]; int64 labels in [0, 10)) is made once on the
device per configuration, seeded by --seed, and every step reuses it: no host-to-device copy is timed. The
models are made afresh (seeded) for each configuration; initialisation is the demo's (He normal for the hidden
layers, Xavier normal for the output, zero biases), which does not change the timing.

For every mode x dtype x batch: --warmup untimed steps (at least three in compile mode, where the first call
compiles and, with CUDA graphs, the next ones record), then --iters steps, each timed alone (CUDA events
around the step and a synchronize after it on CUDA; time.perf_counter on CPU): median / min / max
milliseconds per step, samples/s = batch / median seconds, and the peak memory torch allocated during the
configuration (torch.cuda.max_memory_allocated after reset_peak_memory_stats on a cleaned device, so models,
Adam state, batch, activations and workspaces; 0 on CPU). The loss of the first and of the last step is
printed too: on the fixed batch it must go down over some tens of steps (Adam's first steps may raise it),
and --check makes the script exit 1 when it does not for some configuration.

    modes    eager     plain PyTorch.
             compile   torch.compile (--compile-mode, default "default"; dynamic=False, dynamo reset for every
                       configuration) of a function doing teacher forward + student forward + loss, autocast
                       inside; backward runs the graph AOTAutograd compiled with it; the optimizer step and
                       zero_grad stay eager (with --opt-impl fused that is already one fused kernel per
                       dtype/device group, and the whole step would graph-break at backward anyway).
                       torch < 2.0, or a torch.compile call that raises, gives rows with status "unavailable: <reason>";
                       a compiled function that fails when run gives "failed: torch.compile: <reason>".
    dtypes   f32       plain float32: torch.backends.cuda.matmul.allow_tf32 = False and
                       torch.backends.cudnn.allow_tf32 = False (set for the whole run), so no TF32.
             bf16      torch.autocast(device_type, dtype=torch.bfloat16) around the forwards and the loss, with
                       float32 master weights, gradients and Adam state (mixed precision as our engine does it).
    optimizer --optimizer adam|adamw, --weight-decay (default 0), --opt-impl default|foreach|fused: by default
             fused on CUDA when this torch's optimizer has it, else torch's own default; the choice is printed
             (the CSV has no column for it: it follows from the command, the torch version and the device).

A configuration that fails (out of memory, bf16 autocast unsupported, a compile error, a CUDA error) is written with
status "failed: <reason>" and empty values, the others go on (after an error that spoils the CUDA context they fail
too, each in its rows), and the script then exits 1, as torch_kd.py does; torch.compile missing or refused by this
torch (status "unavailable: <reason>") is not a failure. Appends long-format rows, one metric a row, to --out as each
configuration is measured (header written when the file is new or empty; a file of its own, not the KdKernelSuite CSV):

    suite,impl,mode,dtype,batch,metric,value,unit,status,device,torch,command
    mlp-step,torch,eager,f32,1024,samples_per_s,...    metrics ms_median, ms_min, ms_max, samples_per_s, peak_mem_bytes,
                                                         loop_step_ms (see training_loop: a step as a training loop
                                                         with a host batch each step sees it)

and prints a table to stdout. Needs only torch; runs on CPU too (--device cpu) for a smoke test:

    python3 benchmarks/gpu/torch_mlp_step.py --out mlp-step.csv [--device cuda] [--modes eager,compile]
        [--dtype f32,bf16] [--batch 128,1024,8192] [--iters 50] [--warmup 10] [--temperature 4] [--alpha 0.1]
        [--optimizer adam|adamw] [--weight-decay 0] [--opt-impl default|foreach|fused] [--lr 1e-3] [--seed 7]
        [--compile-mode default|reduce-overhead|max-autotune] [--check]
"""
import argparse
import csv
import gc
import inspect
import os
import shlex
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

COLUMNS = ["suite", "impl", "mode", "dtype", "batch", "metric", "value", "unit", "status", "device", "torch", "command"]
METRICS = [("ms_median", "ms"), ("ms_min", "ms"), ("ms_max", "ms"), ("samples_per_s", "samples/s"),
           ("peak_mem_bytes", "bytes"), ("loop_step_ms", "ms")]
TEACHER = [784, 1200, 1200, 10]
STUDENT = [784, 400, 400, 10]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--modes", default="eager,compile")
    ap.add_argument("--dtype", default="f32,bf16")
    ap.add_argument("--batch", default="128,1024,8192")
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--temperature", type=float, default=4.0)
    ap.add_argument("--alpha", type=float, default=0.1)
    ap.add_argument("--optimizer", choices=["adam", "adamw"], default="adam")
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--opt-impl", choices=["default", "foreach", "fused"], default=None,
                    help="default: fused on CUDA when available, else torch's default")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--compile-mode", default="default", help="torch.compile mode (default, reduce-overhead, ...)")
    ap.add_argument("--check", action="store_true", help="exit 1 unless every ok configuration's loss went down")
    a = ap.parse_args()
    if a.iters < 1:
        ap.error("--iters must be at least 1")
    if a.warmup < 0:
        ap.error("--warmup must be at least 0, got %d" % a.warmup)
    modes = [m for m in a.modes.split(",") if m]
    dtypes = [d for d in a.dtype.split(",") if d]
    try:
        batches = [int(b) for b in a.batch.split(",") if b.strip()]
    except ValueError:
        ap.error("--batch takes comma-separated integers, got %r" % a.batch)
    if not batches or min(batches) < 1:
        ap.error("--batch takes sizes of at least 1, got %r" % a.batch)
    for m in modes:
        if m not in ("eager", "compile"):
            ap.error("unknown mode %r (eager, compile)" % m)
    for d in dtypes:
        if d not in ("f32", "bf16"):
            ap.error("unknown dtype %r (f32, bf16)" % d)

    dev = torch.device(a.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        ap.error("CUDA is not available to this torch (%s); try --device cpu" % torch.__version__)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    torch.backends.cuda.matmul.allow_tf32 = False  # f32 means float32 matmuls, not TF32
    torch.backends.cudnn.allow_tf32 = False
    device_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else dev.type
    opt_impl = a.opt_impl or ("fused" if dev.type == "cuda" and supports(a.optimizer, "fused") else "default")
    argv = getattr(sys, "orig_argv", None) or [os.path.basename(sys.executable)] + sys.argv
    command = shlex.join(argv)
    print("device: %s; torch %s; optimizer %s (%s), lr %g, weight decay %g; T %g, alpha %g; tf32 off"
          % (device_name, torch.__version__, a.optimizer, opt_impl, a.lr, a.weight_decay, a.temperature, a.alpha),
          flush=True)
    head = "%-8s %-5s %6s %10s %10s %10s %13s %12s %10s %21s  %s" % (
        "mode", "dtype", "batch", "ms_median", "ms_min", "ms_max", "samples/s", "loop_step_ms", "peak_MiB",
        "loss first -> last", "status")
    print(head)
    print("-" * len(head), flush=True)

    new = not os.path.exists(a.out) or os.path.getsize(a.out) == 0
    failed_check = []
    failed = []
    with open(a.out, "a", newline="") as f:
        w = csv.writer(f)
        if new:
            w.writerow(COLUMNS)
            f.flush()
        for mode in modes:
            for dname in dtypes:
                for n in batches:
                    r = configuration(a, dev, mode, dname, n, opt_impl)
                    for metric, unit in METRICS:
                        value = "" if r["status"] != "ok" else fmt(metric, r[metric])
                        w.writerow(["mlp-step", "torch", mode, dname, n, metric, value, unit, r["status"],
                                    device_name, torch.__version__, command])
                    f.flush()  # each configuration as it is measured: a run stopped by a time limit keeps what it had
                    if r["status"].startswith("failed"):
                        failed.append("%s %s %d: %s" % (mode, dname, n, r["status"]))
                    if r["status"] == "ok":
                        down = r["loss_last"] < r["loss_first"]
                        if not down:
                            failed_check.append("%s %s %d" % (mode, dname, n))
                        print("%-8s %-5s %6d %10.4f %10.4f %10.4f %13.1f %12.4f %10.1f %10.5f -> %-8.5f  ok%s" % (
                            mode, dname, n, r["ms_median"], r["ms_min"], r["ms_max"], r["samples_per_s"],
                            r["loop_step_ms"], r["peak_mem_bytes"] / 2 ** 20, r["loss_first"], r["loss_last"],
                            "" if down else " (loss did not go down)"), flush=True)
                    else:
                        print("%-8s %-5s %6d %10s %10s %10s %13s %12s %10s %21s  %s" % (
                            mode, dname, n, "-", "-", "-", "-", "-", "-", "-", r["status"]), flush=True)
    rc = 0
    if a.check:
        if failed_check:
            print("check: the loss did not go down for " + "; ".join(failed_check), file=sys.stderr)
            rc = 1
        else:
            print("check: the loss went down in every ok configuration")
    if failed:
        print("torch_mlp_step.py: %d configuration(s) failed: %s" % (len(failed), "; ".join(failed)), file=sys.stderr)
        rc = 1
    sys.exit(rc)


def configuration(a, dev, mode, dname, n, opt_impl):
    """Builds, warms up and times one configuration; a dict of the metrics, or status 'failed: ...' or 'unavailable: ...'."""
    state = {}
    try:
        clean(dev)  # here: after an error that spoiled the context, this raises it, and the row says so
        if mode == "compile" and not hasattr(torch, "compile"):
            return {"status": "unavailable: torch.compile needs torch >= 2.0, this is %s" % torch.__version__}
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        torch.manual_seed(a.seed)
        teacher = mlp(TEACHER).to(dev).eval().requires_grad_(False)
        student = mlp(STUDENT).to(dev).train()
        g = torch.Generator(device=dev).manual_seed(a.seed)
        x = torch.rand(n, TEACHER[0], device=dev, generator=g)
        y = torch.randint(0, TEACHER[-1], (n,), device=dev, generator=g)
        opt = optimizer(a, student.parameters(), opt_impl)
        state.update(teacher=teacher, student=student, x=x, y=y, opt=opt)
        T, alpha, bf16, dev_type = a.temperature, a.alpha, dname == "bf16", dev.type

        def kd_loss(x, y):
            with torch.no_grad():
                t = teacher(x)
            s = student(x)
            ce = F.cross_entropy(s, y)
            kl = F.kl_div(F.log_softmax(s / T, dim=-1), F.log_softmax(t / T, dim=-1), log_target=True,
                          reduction="batchmean")
            return alpha * ce + (1 - alpha) * (T * T) * kl

        def forward_loss(x, y):
            if bf16:
                with torch.autocast(device_type=dev_type, dtype=torch.bfloat16):
                    return kd_loss(x, y)
            return kd_loss(x, y)

        mark_step = None
        if mode == "compile":
            try:
                forward_loss = torch.compile(forward_loss, dynamic=False,
                                             mode=None if a.compile_mode == "default" else a.compile_mode)
            except Exception as e:  # e.g. Python too new for this torch's dynamo
                return {"status": "unavailable: torch.compile: " + reason(e)}
            if "reduce-overhead" in a.compile_mode or a.compile_mode == "max-autotune":
                mark_step = getattr(getattr(torch, "compiler", None), "cudagraph_mark_step_begin", None)

        def step(x=x, y=y):
            if mark_step is not None:
                mark_step()
            loss = forward_loss(x, y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            return loss

        warmup = max(a.warmup, 3) if mode == "compile" else a.warmup
        cuda = dev.type == "cuda"
        times = []
        loss_first = loss_last = None
        for it in range(warmup + a.iters):
            if cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                loss = step()
                end.record()
                end.synchronize()
                ms = start.elapsed_time(end)
            else:
                t0 = time.perf_counter()
                loss = step()
                ms = (time.perf_counter() - t0) * 1e3
            if it >= warmup:
                times.append(ms)
            if it == 0:  # read at once: with CUDA graphs a later step overwrites the output
                loss_first = loss.item()
            if it == warmup + a.iters - 1:
                loss_last = loss.item()
            del loss
        if cuda:
            torch.cuda.synchronize(dev)
        peak = torch.cuda.max_memory_allocated(dev) if cuda else 0
        loop = training_loop(step, x, y, a.iters, dev)
        med = statistics.median(times)
        return {"status": "ok", "ms_median": med, "ms_min": min(times), "ms_max": max(times),
                "samples_per_s": n / (med * 1e-3), "peak_mem_bytes": peak, "loop_step_ms": loop,
                "loss_first": loss_first, "loss_last": loss_last}
    except Exception as e:  # OOM, bf16 autocast or fused optimizer unsupported here, a compile error, ...
        prefix = "torch.compile: " if mode == "compile" else ""
        return {"status": "failed: " + prefix + reason(e)}
    finally:
        state.clear()
        try:
            clean(dev)
        except Exception:  # a spoiled context: the next configuration's clean raises it again, in its own row
            pass


def training_loop(step, x, y, iters, dev):
    """Milliseconds a step in a training loop: two host batches (pinned on CUDA) alternating, each copied to the
    device (non_blocking) and stepped on, the loss of step i read (.item()) after step i+1 is queued, as our
    MlpStepSuite's loop_step_ms submits one step ahead; wall clock of iters steps / iters."""
    cuda = dev.type == "cuda"
    host = []
    for shift in (0, 1):
        hx, hy = x.roll(shift, 0).cpu(), y.roll(shift, 0).cpu()
        host.append((hx.pin_memory(), hy.pin_memory()) if cuda else (hx, hy))
    if cuda:
        torch.cuda.synchronize(dev)
    t0 = time.perf_counter()
    previous = None
    for i in range(iters):
        hx, hy = host[i % 2]
        loss = step(hx.to(dev, non_blocking=True), hy.to(dev, non_blocking=True)).detach().clone()
        if previous is not None:
            previous.item()
        previous = loss
    previous.item()
    return (time.perf_counter() - t0) * 1e3 / iters


def mlp(sizes):
    """ReLU hidden layers, identity output; He normal hidden weights, Xavier normal output, zero biases."""
    layers = []
    for i in range(len(sizes) - 1):
        lin = nn.Linear(sizes[i], sizes[i + 1])
        if i < len(sizes) - 2:
            nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
        else:
            nn.init.xavier_normal_(lin.weight)
        nn.init.zeros_(lin.bias)
        layers.append(lin)
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def supports(name, flag):
    cls = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
    return flag in inspect.signature(cls).parameters


def optimizer(a, params, impl):
    cls = torch.optim.AdamW if a.optimizer == "adamw" else torch.optim.Adam
    kw = dict(lr=a.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=a.weight_decay)
    if impl != "default":
        if not supports(a.optimizer, impl):
            raise RuntimeError("%s has no %s=True in torch %s" % (cls.__name__, impl, torch.__version__))
        kw[impl] = True
    return cls(params, **kw)


def clean(dev):
    reset = getattr(getattr(torch, "_dynamo", None), "reset", None)
    if reset is not None:
        reset()
    gc.collect()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.empty_cache()


def reason(e):
    if "out of memory" in str(e).lower():
        return "out of memory"
    text = " ".join(str(e).split())
    return ("%s: %s" % (type(e).__name__, text))[:200]


def fmt(metric, v):
    if metric == "peak_mem_bytes":
        return str(int(v))
    return ("%.1f" if metric == "samples_per_s" else "%.4f") % v


if __name__ == "__main__":
    main()
