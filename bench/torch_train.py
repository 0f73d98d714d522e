#!/usr/bin/python3
"""PyTorch reference side of the bnaudit training benchmark.

Trains one of the fixture models (small_cnn, small_resnet, defined in
testdata/models/make_fixtures.py) on Fashion-MNIST with plain SGD on the CPU
and reports either accuracy per epoch (--mode accuracy) or the speed of one
training step (--mode speed). See bench/README.md for the recipe and the
recorded numbers.

Needs Debian bookworm's python3-torch (1.13), python3-numpy and python3-onnx
(make_fixtures imports onnx). Run with /usr/bin/python3.

The allocator setting (GLIBC_TUNABLES) is deliberately not touched here: glibc
reads it when the process starts, so set it in the environment of the command.
"""

import argparse
import copy
import datetime
import gzip
import json
import math
import os
import platform
import resource
import statistics
import struct
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MODELS_DIR = os.path.join(REPO, "testdata", "models")
DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"

WARMUP_STEPS = 20
SPEED_REPEATS = 5


# ---------------------------------------------------------------------------
# Models: taken from the fixture generator so both sides train the same nets.


def model_classes():
    # Do not leave a __pycache__ behind in testdata/models.
    old = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    sys.path.insert(0, MODELS_DIR)
    try:
        import make_fixtures
    finally:
        sys.dont_write_bytecode = old
    return {"small_cnn": make_fixtures.SmallCNN, "small_resnet": make_fixtures.SmallResNet}


# ---------------------------------------------------------------------------
# Data: Fashion-MNIST IDX files (optionally gzip-compressed).


def find_idx(data_dir, stem):
    for name in (stem + ".gz", stem):
        p = os.path.join(data_dir, name)
        if os.path.exists(p):
            return p
    raise SystemExit("missing %s(.gz) in %s" % (stem, data_dir))


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise SystemExit("%s: not an unsigned-byte IDX file" % path)
    dims = struct.unpack(">%dI" % ndim, raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise SystemExit("%s: size mismatch" % path)
    return data.reshape(dims)


def load_split(data_dir, prefix, mean, std, order=None):
    """Images as float32 [N,1,28,28] normalized, labels as int64 [N].

    order, if given, is a permutation applied to the samples (on the uint8
    data, before the conversion, to keep the peak memory of loading low).
    """
    images = read_idx(find_idx(data_dir, prefix + "-images-idx3-ubyte"))
    labels = read_idx(find_idx(data_dir, prefix + "-labels-idx1-ubyte"))
    assert images.shape[0] == labels.shape[0] and images.shape[1:] == (28, 28)
    if order is not None:
        images, labels = images[order], labels[order]
    # All in float32: (pixel / 255 - mean) / std, in place (the same float32
    # values as the out-of-place expression, without its temporaries).
    x = images.astype(np.float32).reshape(-1, 1, 28, 28)
    del images
    x /= np.float32(255.0)
    x -= np.float32(mean)
    x /= np.float32(std)
    return torch.from_numpy(x), torch.from_numpy(labels.astype(np.int64))


# ---------------------------------------------------------------------------
# Machine and process information.


def cpu_model_name():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown"


def machine_info():
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpu_model_name": cpu_model_name(),
        "nproc": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "kernel": platform.release(),
        "glibc": " ".join(platform.libc_ver()),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "torch_parallel_backend": "OpenMP" if "OpenMP" in torch.__config__.parallel_info() else "other",
        "env_GLIBC_TUNABLES": os.environ.get("GLIBC_TUNABLES"),
        "env_OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
    }


def peak_rss_mib():
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def reset_peak_rss():
    """Reset the kernel's peak-RSS mark of this process (Linux >= 4.0); False if not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def hwm_rss_mib():
    """Peak RSS since the start or the last reset_peak_rss (VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def current_rss_mib():
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024.0 * 1024.0)


def minor_faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_snapshot():
    """(wall seconds, busy CPU seconds of the whole machine, steal seconds, own CPU seconds)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq = fields[:7]
    steal = fields[7] if len(fields) > 7 else 0
    with open("/proc/self/stat") as f:
        own = f.read().rsplit(")", 1)[1].split()
    own_ticks = int(own[11]) + int(own[12])  # utime, stime (all threads)
    busy = user + nice + system + irq + softirq
    return time.perf_counter(), busy / CLK_TCK, steal / CLK_TCK, own_ticks / CLK_TCK


def other_load(before, after):
    """Share of the machine's CPUs used by other processes (and stolen) between two snapshots.

    Benchmarks on a 2-CPU machine are only meaningful when this is near 0.
    """
    wall = after[0] - before[0]
    ncpu = os.cpu_count() or 1
    other = max(0.0, (after[1] - before[1]) - (after[3] - before[3]))
    steal = after[2] - before[2]
    return {"other_cpu_share": other / (wall * ncpu), "steal_share": steal / (wall * ncpu)}


# ---------------------------------------------------------------------------
# Recipe.


def lr_at(args, t, total):
    """Learning rate of the step that has t steps done before it (of total)."""
    if args.schedule == "constant":
        return args.lr
    return args.lr * (1.0 + math.cos(math.pi * t / total)) / 2.0


def build(args):
    torch.manual_seed(args.seed)
    model = model_classes()[args.model]()
    model.train()
    opt = torch.optim.SGD(
        model.parameters(),
        lr=args.lr,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        nesterov=False,
    )
    return model, opt, nn.CrossEntropyLoss()


def train_step(model, opt, loss_fn, xb, yb, lr):
    for g in opt.param_groups:
        g["lr"] = lr
    logits = model(xb)
    loss = loss_fn(logits, yb)
    loss.backward()
    opt.step()
    opt.zero_grad()  # torch 1.13 default: set_to_none=False (gradients zeroed in place)
    return logits, loss


def evaluate(model, x, y, loss_fn, batch):
    model.eval()
    total_loss = 0.0
    correct = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            xb, yb = x[i : i + batch], y[i : i + batch]
            logits = model(xb)
            total_loss += float(loss_fn(logits, yb)) * xb.shape[0]
            correct += int((logits.argmax(1) == yb).sum())
    model.train()
    n = x.shape[0]
    return total_loss / n, correct / n


# ---------------------------------------------------------------------------
# Modes.


def run_accuracy(args, result):
    x_train, y_train = load_split(args.data, "train", args.norm_mean, args.norm_std)
    x_test, y_test = load_split(args.data, "t10k", args.norm_mean, args.norm_std)
    model, opt, loss_fn = build(args)
    n = x_train.shape[0]
    steps_per_epoch = (n + args.batch - 1) // args.batch  # drop_last=False
    total = steps_per_epoch * args.epochs
    order_gen = torch.Generator().manual_seed(args.seed)

    result["train_samples"] = n
    result["test_samples"] = x_test.shape[0]
    result["steps_per_epoch"] = steps_per_epoch
    result["total_steps"] = total
    epochs = []
    t = 0
    start = time.perf_counter()
    train_time = 0.0
    for epoch in range(1, args.epochs + 1):
        s0 = cpu_snapshot()
        e0 = time.perf_counter()
        perm = torch.randperm(n, generator=order_gen)
        loss_sum = 0.0
        correct = 0
        for i in range(0, n, args.batch):
            idx = perm[i : i + args.batch]
            xb, yb = x_train[idx], y_train[idx]
            logits, loss = train_step(model, opt, loss_fn, xb, yb, lr_at(args, t, total))
            t += 1
            loss_sum += float(loss) * xb.shape[0]
            correct += int((logits.detach().argmax(1) == yb).sum())
        e1 = time.perf_counter()
        train_time += e1 - e0
        test_loss, test_acc = evaluate(model, x_test, y_test, loss_fn, args.batch)
        e2 = time.perf_counter()
        rec = {
            "epoch": epoch,
            "train_loss": loss_sum / n,
            "train_acc": correct / n,
            "test_loss": test_loss,
            "test_acc": test_acc,
            "lr_last_step": lr_at(args, t - 1, total),
            "train_seconds": e1 - e0,
            "eval_seconds": e2 - e1,
            "elapsed_seconds": e2 - start,
            "train_steps_per_s": steps_per_epoch / (e1 - e0),
        }
        rec.update(other_load(s0, cpu_snapshot()))
        epochs.append(rec)
        print(
            "epoch %d  train loss %.4f acc %.4f  test loss %.4f acc %.4f  "
            "train %.1fs (%.1f steps/s) eval %.1fs  elapsed %.1fs  other load %.0f%%"
            % (epoch, rec["train_loss"], rec["train_acc"], test_loss, test_acc,
               rec["train_seconds"], rec["train_steps_per_s"], rec["eval_seconds"], rec["elapsed_seconds"],
               100 * (rec["other_cpu_share"] + rec["steal_share"])),
            flush=True,
        )
    total_time = time.perf_counter() - start
    result["epochs"] = epochs
    result["final_test_acc"] = epochs[-1]["test_acc"]
    result["final_test_loss"] = epochs[-1]["test_loss"]
    result["total_seconds"] = total_time
    result["train_seconds"] = train_time
    result["peak_rss_mib"] = peak_rss_mib()
    print(
        "summary: %s %d epochs, final test acc %.4f (loss %.4f), best %.4f; "
        "total %.1fs (training %.1fs), peak RSS %.0f MiB"
        % (args.model, args.epochs, result["final_test_acc"], result["final_test_loss"],
           max(e["test_acc"] for e in epochs), total_time, train_time, result["peak_rss_mib"])
    )


def time_loop(fn, steps, repeats):
    rates, loads = [], []
    for _ in range(repeats):
        s0 = cpu_snapshot()
        t0 = time.perf_counter()
        fn(steps)
        rates.append(steps / (time.perf_counter() - t0))
        loads.append(other_load(s0, cpu_snapshot()))
    return rates, loads


def max_other(loads):
    return max(l["other_cpu_share"] + l["steal_share"] for l in loads)


def run_speed(args, result):
    # Shuffle once, so every batch is a contiguous view: no gather or copy in
    # the timed loop.
    gen = torch.Generator().manual_seed(args.seed)
    n = read_idx(find_idx(args.data, "train-labels-idx1-ubyte")).shape[0]
    order = torch.randperm(n, generator=gen).numpy()
    x_train, y_train = load_split(args.data, "train", args.norm_mean, args.norm_std, order)
    nbatches = x_train.shape[0] // args.batch  # full batches only, so every step has the same shape
    batches = [
        (x_train[i * args.batch : (i + 1) * args.batch], y_train[i * args.batch : (i + 1) * args.batch])
        for i in range(nbatches)
    ]
    rss_data = current_rss_mib()
    peak_load = peak_rss_mib()
    # Peak RSS of each phase, measured from here on (VmHWM after a reset).
    can_reset = reset_peak_rss()

    model, opt, loss_fn = build(args)
    total = WARMUP_STEPS + SPEED_REPEATS * args.steps
    state = {"t": 0}

    def train_steps(k):
        for _ in range(k):
            t = state["t"]
            xb, yb = batches[t % nbatches]
            train_step(model, opt, loss_fn, xb, yb, lr_at(args, t, total))
            state["t"] = t + 1

    train_steps(WARMUP_STEPS)
    f0 = minor_faults()
    rates, loads = time_loop(train_steps, args.steps, SPEED_REPEATS)
    faults = minor_faults() - f0
    peak_train = hwm_rss_mib() if can_reset else float("nan")

    # Forward only, for comparison with an inference session: eval mode (BN
    # running statistics) and train mode (batch statistics; on a copy, since it
    # updates the running statistics), both under no_grad.
    def forward_rates(m):
        fstate = {"t": 0}

        def fwd(k):
            with torch.no_grad():
                for _ in range(k):
                    xb, _ = batches[fstate["t"] % nbatches]
                    m(xb)
                    fstate["t"] += 1

        fwd(WARMUP_STEPS)
        return time_loop(fwd, args.steps, SPEED_REPEATS)

    model.eval()
    fwd_eval, fwd_eval_loads = forward_rates(model)
    train_copy = copy.deepcopy(model).train()
    fwd_train, fwd_train_loads = forward_rates(train_copy)

    med = statistics.median(rates)
    result.update(
        {
            "warmup_steps": WARMUP_STEPS,
            "timed_steps": args.steps,
            "repeats": SPEED_REPEATS,
            "train_steps_per_s_median": med,
            "train_ms_per_step_median": 1000.0 / med,
            "train_steps_per_s_all": rates,
            "train_other_load_per_repeat": loads,
            "train_max_other_load": max_other(loads),
            "train_images_per_s_median": med * args.batch,
            "minor_page_faults_per_train_step": faults / (SPEED_REPEATS * args.steps),
            "forward_eval_batches_per_s_median": statistics.median(fwd_eval),
            "forward_eval_batches_per_s_all": fwd_eval,
            "forward_eval_max_other_load": max_other(fwd_eval_loads),
            "forward_trainmode_batches_per_s_median": statistics.median(fwd_train),
            "forward_trainmode_batches_per_s_all": fwd_train,
            "forward_trainmode_max_other_load": max_other(fwd_train_loads),
            "rss_after_data_load_mib": rss_data,
            "peak_rss_data_load_mib": peak_load,
            "peak_rss_training_phase_mib": peak_train,
            "training_peak_above_data_mib": peak_train - rss_data,
            "peak_rss_mib": max(peak_load, peak_train, peak_rss_mib()),
            "peak_rss_note": "peak_rss_mib is the whole-process peak (ru_maxrss, and VmHWM of the training "
            "phase after resetting it through /proc/self/clear_refs); the training phase peak includes the "
            "resident training set (rss_after_data_load_mib)",
        }
    )
    if max_other(loads) > 0.05:
        print("WARNING: other processes used up to %.0f%% of the CPUs during the timed loop; "
              "the numbers are not clean" % (100 * max_other(loads)))
    print(
        "speed: %s batch %d threads %d: train %.2f steps/s (%.1f ms/step; repeats %s), "
        "%.0f minor faults/step; forward eval %.1f batches/s, forward train-mode %.1f batches/s; "
        "RSS after data %.0f MiB, peak RSS in training %.0f MiB (+%.0f), process peak %.0f MiB; GLIBC_TUNABLES=%s"
        % (args.model, args.batch, args.threads, med, 1000.0 / med,
           " ".join("%.2f" % r for r in rates), result["minor_page_faults_per_train_step"],
           result["forward_eval_batches_per_s_median"], result["forward_trainmode_batches_per_s_median"],
           rss_data, peak_train, peak_train - rss_data, result["peak_rss_mib"], os.environ.get("GLIBC_TUNABLES") or "(unset)")
    )


def run_refmodels(args, result):
    """K reference models one after another: each trained on its seeded half
    of the pool (the first --pool training images) for --epochs, then
    evaluated on the whole pool (eval mode, batches of 256, the true class's
    softmax probability and correctness kept, as bnaudit's signals are).
    The clock runs from the first model's construction to the last model's
    evaluation; loading the images is outside it, as on bnaudit's side."""
    x, y = load_split(args.data, "train", args.norm_mean, args.norm_std)
    x, y = x[: args.pool], y[: args.pool]
    n = x.shape[0]
    before = cpu_snapshot()
    start = time.perf_counter()
    accs = []
    for k in range(args.models):
        half = np.random.default_rng(args.seed * 7919 + k).permutation(n)[: n // 2]
        xi, yi = x[half], y[half]
        torch.manual_seed(args.seed * 7919 + k + 1)
        model = model_classes()[args.model]()
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                              weight_decay=args.weight_decay, nesterov=False)
        loss_fn = nn.CrossEntropyLoss()
        g = torch.Generator().manual_seed(args.seed * 7919 + k + 1)
        m = xi.shape[0]
        total = args.epochs * ((m + args.batch - 1) // args.batch)
        t = 0
        for _ in range(args.epochs):
            order = torch.randperm(m, generator=g)
            for i in range(0, m, args.batch):
                idx = order[i : i + args.batch]
                train_step(model, opt, loss_fn, xi[idx], yi[idx], lr_at(args, t, total))
                t += 1
        model.eval()
        correct = 0
        with torch.no_grad():
            for i in range(0, n, 256):
                p = torch.softmax(model(x[i : i + 256]), dim=1)
                yb = y[i : i + 256]
                _ = p.gather(1, yb[:, None])  # the true class's probability, as bnaudit keeps
                correct += int((p.argmax(1) == yb).sum())
        accs.append(correct / n)
    secs = time.perf_counter() - start
    after = cpu_snapshot()
    result.update({
        "seconds": secs,
        "models_per_hour": args.models / secs * 3600.0,
        "peak_rss_mib": peak_rss_mib(),
        "mean_pool_accuracy": sum(accs) / len(accs),
        "load": other_load(before, after),
    })
    print("refmodels: %s, %d models, pool %d, %d epochs, batch %d, %d threads: %.1f s, %.1f models/h, "
          "peak RSS %.0f MiB, pool accuracy %.4f"
          % (args.model, args.models, n, args.epochs, args.batch, args.threads, secs,
             result["models_per_hour"], result["peak_rss_mib"], result["mean_pool_accuracy"]), flush=True)


# ---------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=["small_cnn", "small_resnet"], default="small_cnn")
    p.add_argument("--data", default=DEFAULT_DATA, help="folder with Fashion-MNIST IDX files (default %(default)s)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--schedule", choices=["cosine", "constant"], default="cosine")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--norm-mean", type=float, default=0.2860)
    p.add_argument("--norm-std", type=float, default=0.3530)
    p.add_argument("--mode", choices=["accuracy", "speed", "refmodels"], default="accuracy")
    p.add_argument("--pool", type=int, default=40000, help="refmodels mode: pool size (first N training images)")
    p.add_argument("--models", type=int, default=4, help="refmodels mode: reference models K")
    p.add_argument("--steps", type=int, default=200, help="speed mode: timed steps per repeat")
    p.add_argument("--json", metavar="OUT", help="write the results as JSON to OUT")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    result = {
        "tool": "bench/torch_train.py",
        "args": vars(args),
        "machine": machine_info(),
        "torch_num_threads": torch.get_num_threads(),
        "recipe": {
            "optimizer": "torch.optim.SGD(momentum, weight_decay, nesterov=False, dampening=0)",
            "loss": "CrossEntropyLoss (mean over the batch)",
            "schedule": "cosine: lr_t = lr*(1+cos(pi*t/T))/2 per step, t = steps done before the step, "
            "T = total steps" if args.schedule == "cosine" else "constant",
            "init": "PyTorch default init after torch.manual_seed(seed)",
            "normalization": "float32 (pixel/255 - mean)/std",
            "zero_grad": "optimizer.zero_grad() (torch 1.13 default set_to_none=False)",
            "update": "g = grad + weight_decay*p (every parameter, BN and biases included); "
            "buf = g on the first step, else momentum*buf + g; p -= lr_t*buf",
            "order": "each epoch torch.randperm(N, generator=G), G = torch.Generator().manual_seed(seed) "
            "created once; batches of --batch in that order, the last one partial",
            "evaluation": "model.eval() (BN running statistics), no_grad, test set in batches of --batch",
        },
    }
    print("%s %s on %s (%d cpus), torch %s, %d threads, GLIBC_TUNABLES=%s"
          % (args.mode, args.model, result["machine"]["cpu_model_name"], result["machine"]["nproc"],
             torch.__version__, torch.get_num_threads(), os.environ.get("GLIBC_TUNABLES") or "(unset)"),
          flush=True)
    if args.mode == "accuracy":
        run_accuracy(args, result)
    elif args.mode == "refmodels":
        run_refmodels(args, result)
    else:
        run_speed(args, result)
    if args.json:
        d = os.path.dirname(os.path.abspath(args.json))
        os.makedirs(d, exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
