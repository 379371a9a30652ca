#!/usr/bin/env python3
"""ferroflow against TensorFlow on this machine, measured alternately (A B A B), with issue 7's targets.

Usage: python3 bench/compare.py [--reps N] [--tf-python PATH] [--write] [--profile] [cases...]

One command from a fresh clone (Rust and Python 3 only; TensorFlow optional). It builds the release
examples and measures, each figure a median of --reps (default 5) runs with ferroflow and TensorFlow
alternated, one process per run:
- training samples/s of the seed CNN and MLP at batch 32 and 128 (cases cnn32 cnn128 mlp32 mlp128):
  `examples/keras_bench.rs` against the TensorFlow anchor `tf_anchor.py` (the same models, data,
  Adam, batch sizes; the median epoch time of epochs 2-4), and their `predict` throughput at batch
  256 (2,000 test digits after a warm-up predict, the same in both);
- the peak resident memory (getrusage's ru_maxrss of the child, through os.wait4) of the processes
  that train the seed CNN (load MNIST-10k, 4 epochs of `fit`, then `predict`);
- the time from process start to the first finished training step of the seed CNN: the parent
  notes the wall clock before it spawns `keras_bench startup` / `bench/tf_startup.py`, and the child
  prints the wall clock when its first `train_on_batch` has finished (one untimed warm-up run of
  each first, so both start with the files in the page cache);
- the machine's FP32 FMA peak (`examples/fma_peak.rs`) and the GFLOP/s of matmul 1024^2 and of the
  seed CNN's convolutions forward / backward-input / backward-filter (`examples/kernel_gflops.rs`)
  as a share of the all-threads peak.
Then it prints, as Markdown, the ratios against issue 7's targets (met / not met) and the details.
`--profile` adds the per-op profile of the seed CNN's training (`FERROFLOW_PROFILE=1 keras_bench
cnn32`, traced and eager). `--write` puts the whole text into BENCHMARKS.md between the lines
`<!-- compare:begin -->` and `<!-- compare:end -->`. `--json PATH` saves every run's raw figures.
The case `lstm` (LSTM(128) over 100 steps, batch 64: `lstm_bench` against bench/tf_lstm.py, training
only) is available but not in the default set.

Without TensorFlow (for the Python that --tf-python or $TF_PYTHON names, default `python3`) it says
how to install it and prints ferroflow's figures alone. Only the standard library is needed.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

# kernel_gflops rows: the convolution ops alone, and the fused passes the training graph runs.
CONV_OP = re.compile(r"^conv\d_\d+x\d+x\d+_\d+_(forward|backward_input|backward_filter)$")
CONV_FUSED = re.compile(r"^conv\d_\d+x\d+x\d+_\d+_(forward_fused_pool|pool_grad_[a-z_]+_fused)$")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
EXAMPLES = os.path.join(ROOT, "target", "release", "examples")
BENCHMARKS_MD = os.path.join(ROOT, "BENCHMARKS.md")
BEGIN, END = "<!-- compare:begin -->", "<!-- compare:end -->"
# The project's TensorFlow anchor where the shared tree is checked out beside the repository;
# bench/tf_anchor.py is a verbatim copy of it so that a fresh clone runs too.
SHARED_ANCHOR = os.path.join(ROOT, "..", "shared", "bench", "tf_anchor.py")
SEED_CASES = ["cnn32", "cnn128", "mlp32", "mlp128"]
INSTALL_TF = ("TensorFlow not found for {py}. Install it in a virtual environment:\n"
              "  python3 -m venv ~/tf && ~/tf/bin/pip install tensorflow-cpu\n"
              "then run: python3 bench/compare.py --tf-python ~/tf/bin/python\n"
              "(ferroflow's figures follow alone.)\n")


# ---------------------------------------------------------------- running children

def run_child(cmd, env=None):
    """Runs cmd to its end. Returns (JSON lines of its stdout, peak RSS in MiB, spawn wall clock,
    stderr text). The child is reaped with os.wait4 so that its own rusage is read."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        spawn = time.time()
        p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {p.returncode}:\n{stderr[-3000:]}")
    lines = [json.loads(l) for l in stdout.splitlines() if l.startswith("{")]
    return lines, usage.ru_maxrss / 1024.0, spawn, stderr  # ru_maxrss is in KiB on Linux


def example(name):
    return os.path.join(EXAMPLES, name)


def build(lstm):
    names = ["keras_bench", "fma_peak", "kernel_gflops"] + (["lstm_bench"] if lstm else [])
    args = [a for n in names for a in ("--example", n)]
    subprocess.run(["cargo", "build", "--release", *args], cwd=ROOT, check=True)


def tf_version(py):
    """TensorFlow's version for that Python, or None when it cannot import it."""
    try:
        r = subprocess.run([py, "-c", "import os; os.environ['TF_CPP_MIN_LOG_LEVEL']='3'; "
                            "import tensorflow as tf; print(tf.__version__)"], capture_output=True, text=True)
    except OSError:  # no such interpreter
        return None
    return r.stdout.strip().splitlines()[-1] if r.returncode == 0 and r.stdout.strip() else None


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


# ---------------------------------------------------------------- measurements

def measure_training(cases, reps, tf_py, anchor):
    """Per case: ferroflow's and TensorFlow's runs (JSON + peak RSS), alternated A B A B."""
    env = dict(os.environ, MNIST_DIR=os.path.join(ROOT, "data", "mnist-10k"))
    runs = {}
    for case in cases:
        ours, theirs = [], []
        for _ in range(reps):  # alternate: the machine's load drifts
            lines, rss, _, _ = run_child([example("keras_bench"), case])
            ours.append(dict(lines[-1], peak_rss_mib=rss))
            if tf_py:
                lines, rss, _, _ = run_child([tf_py, anchor, case], env=env)
                theirs.append(dict(lines[-1], peak_rss_mib=rss))
            print(f"  {case}: ferroflow {ours[-1]['train_samples_per_s']:,.0f} samples/s"
                  + (f", TensorFlow {theirs[-1]['train_samples_per_s']:,.0f}" if theirs else ""), file=sys.stderr)
        runs[case] = {"ferroflow": ours, "tensorflow": theirs}
    return runs


def measure_startup(reps, tf_py):
    """Seconds from spawning the process to its first finished training step, alternated."""
    ours_cmd = [example("keras_bench"), "startup"]
    tf_cmd = [tf_py, os.path.join(BENCH, "tf_startup.py")] if tf_py else None
    run_child(ours_cmd)  # warm-up: page cache
    if tf_cmd:
        run_child(tf_cmd)
    ours, theirs = [], []
    for _ in range(reps):
        lines, rss, spawn, _ = run_child(ours_cmd)
        ours.append(dict(lines[-1], startup_s=lines[-1]["first_step_unix_s"] - spawn, peak_rss_mib=rss))
        if tf_cmd:
            lines, rss, spawn, _ = run_child(tf_cmd)
            theirs.append(dict(lines[-1], startup_s=lines[-1]["first_step_unix_s"] - spawn, peak_rss_mib=rss))
    return {"ferroflow": ours, "tensorflow": theirs}


def measure_lstm(reps, tf_py):
    ours, theirs = [], []
    for _ in range(reps):
        ours.append(run_child([example("lstm_bench")])[0][-1])
        if tf_py:
            theirs.append(run_child([tf_py, os.path.join(BENCH, "tf_lstm.py")])[0][-1])
    return {"ferroflow": ours, "tensorflow": theirs}


def measure_peak(previous=None):
    """The FP32 FMA peak (GFLOP/s, one thread and all threads) from examples/fma_peak.rs; with
    `previous`, the larger figures of the two measurements (a peak is a maximum, and another
    process on the machine can only lower it)."""
    peak = run_child([example("fma_peak")])[0][-1]
    if previous:
        for key in ("single_thread_gflops", "all_threads_gflops"):
            peak[key] = max(peak[key], previous[key])
    return peak


def measure_kernels():
    """GFLOP/s of matmul 1024^2 and the seed CNN's convolutions (examples/kernel_gflops.rs; its
    Dense-layer A/B rows are left out: `kernel_gflops dense_` prints them)."""
    return run_child([example("kernel_gflops"), "matmul_1024", "conv"])[0]


PROFILE_ROW = re.compile(r"^(\S+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)%$")


def measure_profile(eager, epochs=2):
    """The per-op profile of `keras_bench cnn32` (FERROFLOW_PROFILE=1): rows (op, calls, ms)
    from the table that `fit` prints to stderr at its end, and the number of training steps."""
    env = dict(os.environ, FERROFLOW_PROFILE="1", EPOCHS=str(epochs), RUN_EAGERLY="1" if eager else "0")
    _, _, _, stderr = run_child([example("keras_bench"), "cnn32"], env=env)
    rows = []
    for line in stderr.splitlines():
        m = PROFILE_ROW.match(line.strip())
        if m:
            rows.append((m.group(1), int(m.group(2)), float(m.group(3))))
    steps = epochs * -(-8000 // 32)  # 8,000 training digits, batch 32
    return {"rows": rows, "steps": steps, "epochs": epochs, "eager": eager}


# ---------------------------------------------------------------- the report

def fmt(v, digits=0, suffix=""):
    return "-" if v is None else f"{v:,.{digits}f}{suffix}"


def verdict(ratio, target, at_least):
    if ratio is None:
        return "not measured"
    return "met" if (ratio >= target if at_least else ratio <= target) else "**not met**"


def machine_lines(tf_ver, anchor, reps, args_line):
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
    except OSError:
        cpu = platform.processor() or platform.machine()
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kib = int(next(l.split()[1] for l in f if l.startswith("MemTotal")))
            mem = f", {kib / 2**20:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            fl = next((l for l in f if l.startswith("flags")), "").split()
            flags = ", AVX-512F" if "avx512f" in fl else (", AVX2+FMA" if "avx2" in fl else "")
    except OSError:
        pass
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip() or "rustc ?"
    try:
        load = ", load average %.1f at the start" % os.getloadavg()[0]
    except OSError:
        load = ""
    return [
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC. Command: `{args_line}`.",
        f"- Machine: {cpu}{flags}, {os.cpu_count()} logical cores{mem}{load}.",
        f"- Versions: ferroflow (this checkout, release), {rustc}; "
        + (f"TensorFlow {tf_ver} CPU (`{os.path.relpath(os.path.normpath(anchor), ROOT)}`), "
           f"Python {platform.python_version()} for the harness." if tf_ver else "TensorFlow not installed."),
        f"- Each figure is the median of {reps} runs, one process per run, ferroflow and TensorFlow alternated.",
    ]


def report(res, tf_ver, reps, anchor, args_line):
    out = ["### bench/compare.py: ferroflow against TensorFlow (issue 7's targets)", ""]
    out += machine_lines(tf_ver, anchor, reps, args_line) + [""]
    train, startup, peak, kernels = res.get("training", {}), res.get("startup"), res.get("peak"), res.get("kernels")
    med = lambda runs, key: median(r.get(key) for r in runs)
    ratio = lambda a, b: a / b if a is not None and b else None

    targets = []  # (case, ours, theirs, ratio, target text, verdict)
    for case in SEED_CASES:
        if case in train:
            o, t = med(train[case]["ferroflow"], "train_samples_per_s"), med(train[case]["tensorflow"], "train_samples_per_s")
            goal = 2.0 if case.startswith("cnn") else 3.0
            targets.append((f"{case[:3].upper()} training, batch {case[3:]} (samples/s)", fmt(o), fmt(t),
                            ratio(o, t), f">= {goal:.1f}x", verdict(ratio(o, t), goal, True)))
    for kind in ("cnn", "mlp"):
        ours = [r for c in SEED_CASES if c.startswith(kind) and c in train for r in train[c]["ferroflow"]]
        theirs = [r for c in SEED_CASES if c.startswith(kind) and c in train for r in train[c]["tensorflow"]]
        if ours:
            o, t = med(ours, "infer_samples_per_s"), med(theirs, "infer_samples_per_s")
            targets.append((f"{kind.upper()} predict, batch 256 (samples/s)", fmt(o), fmt(t), ratio(o, t),
                            ">= 2.0x", verdict(ratio(o, t), 2.0, True)))
    for case in ("cnn32", "cnn128"):
        if case in train:
            o, t = med(train[case]["ferroflow"], "peak_rss_mib"), med(train[case]["tensorflow"], "peak_rss_mib")
            targets.append((f"peak resident memory, CNN training batch {case[3:]} (MiB)", fmt(o, 1), fmt(t, 1),
                            ratio(o, t), "<= 0.5x", verdict(ratio(o, t), 0.5, False)))
    if startup:
        o, t = med(startup["ferroflow"], "startup_s"), med(startup["tensorflow"], "startup_s")
        targets.append(("process start to first finished CNN training step (s)", fmt(o, 3), fmt(t, 3),
                        ratio(o, t), "<= 0.1x", verdict(ratio(o, t), 0.1, False)))
    peak_all = peak.get("all_threads_gflops") if peak else None
    kernel_rows = []
    if kernels and peak_all:
        for k in kernels:
            share = k["gflops"] / peak_all
            kernel_rows.append((k, share))
        mm = [s for k, s in kernel_rows if k["kernel"].startswith("matmul")]
        # The convolution ops alone (ops::conv2d and its two backprops), and the passes as the
        # traced training step runs them: forward fused with bias + ReLU + max-pool
        # (`_FusedConv2DMaxPool`), backward from the pooled gradient (`_FusedConv2DMaxPoolGrad`).
        conv = [s for k, s in kernel_rows if CONV_OP.match(k["kernel"])]
        fused = [s for k, s in kernel_rows if CONV_FUSED.match(k["kernel"])]
        if mm:
            targets.append(("matmul 1024² f32 (% of FP32 peak)", fmt(100 * mm[0], 0, "%"), "", None,
                            ">= 60%", "met" if mm[0] >= 0.6 else "**not met**"))
        if conv:
            met = sum(s >= 0.6 for s in conv)
            targets.append((f"conv2d of the seed CNN, {len(conv)} passes (% of FP32 peak)",
                            f"{100 * min(conv):.0f}-{100 * max(conv):.0f}%", "", None, ">= 60% each",
                            "met" if met == len(conv) else f"**not met** ({met} of {len(conv)} passes)"))
        if fused:
            met = sum(s >= 0.6 for s in fused)
            targets.append((f"the same convolutions as training runs them, fused with bias/ReLU/max-pool, "
                            f"{len(fused)} passes (% of FP32 peak)",
                            f"{100 * min(fused):.0f}-{100 * max(fused):.0f}%", "", None, ">= 60% each",
                            "met" if met == len(fused) else f"**not met** ({met} of {len(fused)} passes)"))

    out += ["| case | ferroflow | TensorFlow | ratio | target | |", "| --- | ---: | ---: | ---: | --- | --- |"]
    for name, o, t, r, goal, v in targets:
        out.append(f"| {name} | {o} | {t or ''} | {fmt(r, 2, 'x') if r is not None else ''} | {goal} | {v} |")
    out.append("")

    if train:
        out += ["Training and inference, per case (medians; test accuracy after 4 epochs):", "",
                "| case | ferroflow train/s | TF train/s | ratio | ferroflow predict/s | TF predict/s | ratio "
                "| peak RSS MiB (ff / TF) | test acc (ff / TF) |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
        for case, r in train.items():
            f_, t_ = r["ferroflow"], r["tensorflow"]
            o, t = med(f_, "train_samples_per_s"), med(t_, "train_samples_per_s")
            oi, ti = med(f_, "infer_samples_per_s"), med(t_, "infer_samples_per_s")
            out.append(f"| {case} | {fmt(o)} | {fmt(t)} | {fmt(ratio(o, t), 2)} | {fmt(oi)} | {fmt(ti)} | "
                       f"{fmt(ratio(oi, ti), 2)} | {fmt(med(f_, 'peak_rss_mib'), 1)} / {fmt(med(t_, 'peak_rss_mib'), 1)} | "
                       f"{fmt(med(f_, 'test_accuracy'), 4)} / {fmt(med(t_, 'test_accuracy'), 4)} |")
        out.append("")
    if "lstm" in res:
        r = res["lstm"]
        o, t = med(r["ferroflow"], "train_samples_per_s"), med(r["tensorflow"], "train_samples_per_s")
        out += ["| LSTM(128), 100 steps, batch 64 | ferroflow train/s | TF train/s | ratio |",
                "| --- | ---: | ---: | ---: |", f"| training | {fmt(o)} | {fmt(t)} | {fmt(ratio(o, t), 2)} |", ""]
    if startup:
        so = [r["startup_s"] for r in startup["ferroflow"]]
        st = [r["startup_s"] for r in startup["tensorflow"]]
        out += [f"Start to first step, all runs (s): ferroflow {', '.join(f'{v:.3f}' for v in so)}"
                + (f"; TensorFlow {', '.join(f'{v:.2f}' for v in st)}" if st else "")
                + f". Within the process (from `main` / the script's first line): ferroflow "
                f"{fmt(med(startup['ferroflow'], 'in_process_s'), 3)} s"
                + (f", TensorFlow {fmt(med(startup['tensorflow'], 'in_process_s'), 2)} s" if st else "") + ".", ""]
    if peak:
        out += [f"FP32 peak (`examples/fma_peak.rs`, {peak['isa']}, {peak['chains']} FMA chains x "
                f"{peak['lanes']} lanes): {peak['single_thread_gflops']:,.0f} GFLOP/s on one thread, "
                f"{peak['all_threads_gflops']:,.0f} GFLOP/s on {peak['threads']} threads (the reference below; "
                "the best of its runs before and after the other measurements).", ""]
        if any(share > 1.0 for _, share in kernel_rows):
            out += ["**Warning:** a kernel measured above 100% of the peak: the machine was busy while the "
                    "peak was measured, so every % of peak here is too high. Re-run on a quiet machine.", ""]
    if kernel_rows:
        out += ["| kernel (`examples/kernel_gflops.rs`) | batch | median time | GFLOP/s | % of peak | >= 60% |",
                "| --- | ---: | ---: | ---: | ---: | --- |"]
        for k, share in kernel_rows:
            if not k["flops"]:  # a memory-bound pass (no FLOPs counted): its time only
                out.append(f"| {k['kernel']} | {k['batch'] or ''} | {k['median_s'] * 1e3:.3f} ms |  |  |  |")
                continue
            # Only the target's rows get a verdict; the others (unfused / expand / no-argmax
            # variants) are there for comparison.
            name = k["kernel"]
            target = name.startswith("matmul") or CONV_OP.match(name) or CONV_FUSED.match(name)
            mark = ("met" if share >= 0.6 else "**not met**") if target else ""
            out.append(f"| {name} | {k['batch'] or ''} | {k['median_s'] * 1e3:.3f} ms | {k['gflops']:,.1f} | "
                       f"{100 * share:.0f}% | {mark} |")
        out.append("")
        firsts = [(k, share) for k, share in kernel_rows
                  if k.get("first_call_median_s") and k["kernel"].endswith("_fused")]
        if firsts:
            out += ["The `*_pool_grad_*` rows run their three variants alternately in blocks of 4 calls; the "
                    "table gives a block's later calls (the op's inputs in cache, as in the other rows; in "
                    "training its pooled gradient comes from the op just before it, the pooled values and "
                    "argmax from the same step's forward pass). A block's first call, after "
                    "the other variants evicted them, for the fused op: " + "; ".join(
                        f"{k['kernel']} b{k['batch']} {k['first_call_median_s'] * 1e3:.3f} ms"
                        + (f" ({100 * share * k['median_s'] / k['first_call_median_s']:.0f}% of peak)" if k["flops"] else "")
                        for k, share in firsts) + ".", ""]
    for prof in res.get("profile", []):
        rows = prof["rows"]
        total = sum(ms for _, _, ms in rows)
        mode = "eager (`RUN_EAGERLY=1`)" if prof["eager"] else "traced (the default)"
        out += [f"Per-op profile of the seed CNN's training, batch 32, {mode}: `FERROFLOW_PROFILE=1 "
                f"keras_bench cnn32`, {prof['epochs']} epochs = {prof['steps']} steps, {total:,.0f} ms of "
                "kernel time. Exclusive times: a fused op's row is its own part, the ops it runs are "
                "under their names; `OptimizerUpdate` is the fused Adam update of the variables:", "",
                "| op | share of time | calls per step | mean µs |", "| --- | ---: | ---: | ---: |"]
        for op, calls, ms in rows:
            if total and 100 * ms / total >= 0.1:
                out.append(f"| {op} | {100 * ms / total:.1f}% | {calls / prof['steps']:.2f} | {1e3 * ms / calls:,.1f} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def write_benchmarks(text):
    with open(BENCHMARKS_MD) as f:
        doc = f.read()
    if BEGIN not in doc or END not in doc or doc.index(BEGIN) > doc.index(END):
        raise SystemExit(f"BENCHMARKS.md has no '{BEGIN}' ... '{END}' section to rewrite")
    head, rest = doc.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    tmp = BENCHMARKS_MD + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{head}{BEGIN}\n{text}\n{END}{tail}")
    os.replace(tmp, BENCHMARKS_MD)  # atomic
    print(f"wrote the table into {BENCHMARKS_MD}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=5, help="runs per figure (median), default 5")
    ap.add_argument("--tf-python", default=os.environ.get("TF_PYTHON", "python3"),
                    help="a Python with tensorflow-cpu (default $TF_PYTHON or python3)")
    ap.add_argument("--anchor", default=None, help="the TensorFlow script of the seed models "
                    "(default ../shared/bench/tf_anchor.py when present, else bench/tf_anchor.py)")
    ap.add_argument("--write", action="store_true", help="rewrite the marked section of BENCHMARKS.md")
    ap.add_argument("--profile", action="store_true", help="add the per-op profile of the seed CNN step")
    ap.add_argument("--no-kernels", action="store_true", help="skip the FMA peak and kernel GFLOP/s")
    ap.add_argument("--no-startup", action="store_true", help="skip the time-to-first-step runs")
    ap.add_argument("--json", help="also save every run's raw figures to this file")
    ap.add_argument("cases", nargs="*", default=SEED_CASES, help="cnn32 cnn128 mlp32 mlp128 (default), lstm")
    a = ap.parse_args()
    a.reps = max(1, a.reps)
    bad = [c for c in a.cases if c not in SEED_CASES + ["lstm"]]
    if bad:
        ap.error(f"unknown case(s) {bad}; choose from {SEED_CASES + ['lstm']}")
    anchor = a.anchor or (SHARED_ANCHOR if os.path.exists(SHARED_ANCHOR) else os.path.join(BENCH, "tf_anchor.py"))
    build("lstm" in a.cases)
    tf_ver = tf_version(a.tf_python)
    if tf_ver is None:
        print(INSTALL_TF.format(py=a.tf_python), file=sys.stderr)
    tf_py = a.tf_python if tf_ver else None

    res = {}
    if not a.no_kernels:
        print("FMA peak and kernel GFLOP/s ...", file=sys.stderr)
        res["peak"] = measure_peak()
        res["kernels"] = measure_kernels()
    seed = [c for c in a.cases if c in SEED_CASES]
    if seed:
        print("training and predict, alternated ...", file=sys.stderr)
        res["training"] = measure_training(seed, a.reps, tf_py, anchor)
    if "lstm" in a.cases:
        res["lstm"] = measure_lstm(a.reps, tf_py)
    if not a.no_startup:
        print("time to the first training step ...", file=sys.stderr)
        res["startup"] = measure_startup(a.reps, tf_py)
    if "peak" in res:
        res["peak"] = measure_peak(res["peak"])  # again after the long runs: keep the higher
    if a.profile:
        print("per-op profile ...", file=sys.stderr)
        res["profile"] = [measure_profile(eager=False), measure_profile(eager=True)]

    args_line = " ".join(["python3 bench/compare.py", *map(shlex.quote, sys.argv[1:])])
    text = report(res, tf_ver, a.reps, anchor, args_line)
    print("\n" + text)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    if a.write:
        write_benchmarks(text)


if __name__ == "__main__":
    main()
