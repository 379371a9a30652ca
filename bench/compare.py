#!/usr/bin/env python3
"""Seed CNN/MLP training throughput: ferroflow against TensorFlow, measured alternately (A B A B).

Usage: python3 bench/compare.py [--reps N] [--tf-python PATH] [cases...]
Cases: cnn32 cnn128 mlp32 mlp128 (default) and lstm (LSTM(128) over 100 steps, batch 64: the
`lstm_bench` example against bench/tf_lstm.py, training only).
Runs `cargo run --release --example keras_bench -- <case>` and
`<tf-python> ../shared/bench/tf_anchor.py <case>` one after the other, `--reps` times per case,
and prints medians and the ratio ferroflow / TensorFlow. Without TensorFlow it says how to install
it (a venv with `pip install tensorflow-cpu`) and prints ferroflow's figures alone. Only the
standard library is needed."""
import argparse, json, os, platform, statistics, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANCHOR = os.path.join(ROOT, "..", "shared", "bench", "tf_anchor.py")
TF_LSTM = os.path.join(ROOT, "bench", "tf_lstm.py")


def run_json(cmd, env=None):
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-2000:]}")
    return [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{")][-1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--tf-python", default=os.environ.get("TF_PYTHON", "python3"))
    ap.add_argument("cases", nargs="*", default=["cnn32", "cnn128", "mlp32", "mlp128"])
    a = ap.parse_args()
    seed = [c for c in a.cases if c != "lstm"]
    examples = (["--example", "keras_bench"] if seed else []) + (["--example", "lstm_bench"] if "lstm" in a.cases else [])
    subprocess.run(["cargo", "build", "--release", *examples], cwd=ROOT, check=True)
    has_tf = subprocess.run([a.tf_python, "-c", "import tensorflow"], capture_output=True).returncode == 0
    if not has_tf:
        print("TensorFlow not found for", a.tf_python, "- install it with:\n"
              "  python3 -m venv ~/tf && ~/tf/bin/pip install tensorflow-cpu\n"
              "  then: python3 bench/compare.py --tf-python ~/tf/bin/python\n", file=sys.stderr)
    env = dict(os.environ, MNIST_DIR=os.path.join(ROOT, "data", "mnist-10k"))
    rows, lstm_rows, theirs = [], [], []
    if "lstm" in a.cases:
        ours, theirs_l = [], []
        for _ in range(a.reps):  # alternate A B A B: the machine's load drifts
            ours.append(run_json([os.path.join(ROOT, "target", "release", "examples", "lstm_bench")]))
            if has_tf:
                theirs_l.append(run_json([a.tf_python, TF_LSTM]))
        o = statistics.median(r["train_samples_per_s"] for r in ours)
        t = statistics.median(r["train_samples_per_s"] for r in theirs_l) if theirs_l else None
        lstm_rows.append(("lstm128_t100_b64", o, t, o / t if t else None, [r["train_samples_per_s"] for r in ours],
                          [r["train_samples_per_s"] for r in theirs_l]))
        theirs = theirs_l
    for case in seed:
        ours, theirs = [], []
        for _ in range(a.reps):
            ours.append(run_json([os.path.join(ROOT, "target", "release", "examples", "keras_bench"), case]))
            if has_tf:
                theirs.append(run_json([a.tf_python, ANCHOR, case], env=env))
        o = statistics.median(r["train_samples_per_s"] for r in ours)
        oi = statistics.median(r["infer_samples_per_s"] for r in ours)
        oa = statistics.median(r["test_accuracy"] for r in ours)
        if theirs:
            t = statistics.median(r["train_samples_per_s"] for r in theirs)
            ti = statistics.median(r["infer_samples_per_s"] for r in theirs)
            ta = statistics.median(r["test_accuracy"] for r in theirs)
            rows.append((case, o, t, o / t, oi, ti, oi / ti, oa, ta))
        else:
            rows.append((case, o, None, None, oi, None, None, oa, None))
    tfv = theirs[0]["framework"] if has_tf and theirs else "tensorflow (not installed)"
    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} threads; {tfv}; medians of {a.reps}\n")
    print("| case | ferroflow train samples/s | TF train samples/s | ratio | ferroflow infer/s | TF infer/s | ratio | test acc (ff / TF) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    f = lambda v, p=0: "-" if v is None else f"{v:,.{p}f}"
    for c, o, t, r, oi, ti, ri, oa, ta in rows:
        print(f"| {c} | {f(o)} | {f(t)} | {f(r, 2)} | {f(oi)} | {f(ti)} | {f(ri, 2)} | {f(oa, 4)} / {f(ta, 4)} |")
    if lstm_rows:
        print("\n| case | ferroflow train samples/s | TF train samples/s | ratio | runs (ff) | runs (TF) |")
        print("| --- | ---: | ---: | ---: | --- | --- |")
        for c, o, t, r, os_, ts in lstm_rows:
            print(f"| {c} | {f(o)} | {f(t)} | {f(r, 2)} | {', '.join(f(v) for v in os_)} | {', '.join(f(v) for v in ts)} |")


if __name__ == "__main__":
    main()
