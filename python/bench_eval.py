#!/usr/bin/env python3
"""End-to-end benchmark of `imagenetx evaluate` (run by `just bench-eval`).

Subcommands:

  images   seeded synthetic ImageNet-sized JPEGs (500x375, ~110 KB, made by
           `python/preprocess_reference.py bench-images`) into DIR/images, and
           DIR/images-10k: the same files hard-linked 10 times under distinct
           names (for the peak-memory comparison).
  run      interleaved repetitions of every variant, one fresh process per
           measurement; one JSON line per measurement to --log.
  report   medians and ratios as Markdown, from the --log JSONL.

Variants measured in `run` (each repetition runs all of them, in a rotated
order, so machine noise hits them alike):

  rust-bB-tT-iI  `imagenetx evaluate MODEL --images DIR --limit N --batch-size B
                 --threads T --intra-threads I --ep cpu --quiet --out TMP.csv`:
                 wall clock of the whole process (start-up, session, model hash,
                 decode, inference, CSV, run record, report) → images/s.
  ort-bB-i0      `throughput MODEL B ceil(N/B) cpu` (crates/infer/examples): ONNX
                 Runtime through our `Classifier` on one pre-made tensor, ORT's
                 default intra-op threads; its own steady-state images/s (one
                 warm-up batch, session creation excluded).
  ortpy-bB-iI    onnxruntime (Python, same 1.31.1) on one pre-made random batch,
                 intra_op_num_threads=I (0: default), ceil(N/B) runs after one
                 warm-up; steady-state images/s (lets the ORT-alone baseline use
                 the same intra-op threads as the matching rust variant).
  py-bB          the Python loop a careful user would write: onnx_reference's
                 PIL + numpy preprocessing (`preprocess_image`, tflite preset from
                 the model metadata), a ThreadPoolExecutor with one worker per
                 core decoding the next batch while the current one runs in
                 onnxruntime (default threads), float64 softmax + top-5 per image,
                 a CSV like ours; wall clock of the whole process.
  pyref          `python/onnx_reference.py --metadata` (sequential decoding, batch
                 16), wall clock of the whole process.
  rss-N          peak RSS (ru_maxrss from wait4 on the child) of `imagenetx
                 evaluate --images images-10k --limit N` (default settings).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run_child(cmd: list[str], env: dict | None = None) -> tuple[float, int, str, float]:
    """Wall seconds, peak RSS in KiB, captured output and CPU seconds (user + system) of one
    fresh child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out[-3000:]}")
    return wall, usage.ru_maxrss, out, usage.ru_utime + usage.ru_stime


# ------------------------------------------------------------------ images


def cmd_images(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    images = root / "images"
    last = images / f"bench_{args.count - 1:04}.JPEG"
    if not last.exists():
        subprocess.run([sys.executable, str(HERE / "preprocess_reference.py"), "bench-images",
                        "--out", str(images), "--count", str(args.count)], check=True)
    files = sorted(images.glob("bench_*.JPEG"))[: args.count]
    big = root / "images-10k"
    big.mkdir(parents=True, exist_ok=True)
    copies = math.ceil(args.big / len(files))
    made = 0
    for c in range(copies):
        for f in files:
            if made == args.big:
                break
            dst = big / f"copy{c:02}_{f.name}"
            if not dst.exists():
                os.link(f, dst)
            made += 1
    print(f"{len(files)} distinct JPEGs in {images}; {made} hard links in {big}", file=sys.stderr)
    return 0


# ------------------------------------------------------------------ python baselines


def cmd_py_loop(args: argparse.Namespace) -> int:
    """The Python PIL + onnxruntime loop (variant py-bB); prints images/s as JSON."""
    import csv
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    import onnxruntime as ort

    sys.path.insert(0, str(HERE))
    import onnx_reference as ref

    start = time.perf_counter()
    opts = ort.SessionOptions()
    if args.no_spin:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(args.model, opts, providers=["CPUExecutionProvider"])
    fields = json.loads(session.get_modelmeta().custom_metadata_map[ref.METADATA_KEY])
    pre = ref.apply_overrides(ref.PRESETS[fields.pop("preset", "torchvision")], fields, "metadata")
    name = session.get_inputs()[0].name
    paths = sorted(Path(args.images).glob("*.JPEG"))[: args.limit]
    chunks = [paths[i:i + args.batch_size] for i in range(0, len(paths), args.batch_size)]
    workers = args.workers or os.cpu_count() or 1
    with ThreadPoolExecutor(workers) as pool, open(args.out, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["file_name", "predicted_class", "predicted_probability", "top5_classes",
                         "top5_probabilities"])
        submit = lambda chunk: [pool.submit(ref.preprocess_image, p, pre) for p in chunk]  # noqa: E731
        pending = submit(chunks[0]) if chunks else []
        for i, chunk in enumerate(chunks):
            arrays = [f.result() for f in pending]
            pending = submit(chunks[i + 1]) if i + 1 < len(chunks) else []
            x = np.ascontiguousarray(np.stack(arrays).transpose(0, 3, 1, 2))
            logits = session.run(None, {name: x})[0]
            prob, _ = ref.to_probabilities(logits)
            for path, p in zip(chunk, prob):
                best = ref.top5(p)
                writer.writerow([path.name, int(best[0]), repr(float(p[best[0]])),
                                 " ".join(str(int(c)) for c in best),
                                 " ".join(repr(float(p[c])) for c in best)])
    wall = time.perf_counter() - start
    print(json.dumps({"images": len(paths), "inner_s": wall}))
    return 0


def cmd_ort_py(args: argparse.Namespace) -> int:
    """onnxruntime alone on one pre-made batch (variant ortpy-bB-iI); prints images/s as JSON."""
    import numpy as np
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if args.intra_threads:
        opts.intra_op_num_threads = args.intra_threads
    if args.no_spin:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(args.model, opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    x = np.random.default_rng(0).uniform(-1, 1, (args.batch_size, 3, 224, 224)).astype(np.float32)
    session.run(None, {name: x})  # warm-up
    start = time.perf_counter()
    for _ in range(args.batches):
        session.run(None, {name: x})
    elapsed = time.perf_counter() - start
    print(json.dumps({"images": args.batch_size * args.batches, "rate": args.batch_size * args.batches / elapsed}))
    return 0


# ------------------------------------------------------------------ run


def variants(args: argparse.Namespace) -> list[dict]:
    """Every (name, command, how to read images/s) of the run."""
    n = args.limit
    images = str(Path(args.dir) / "images")
    tmp = args.tmp
    py = sys.executable
    me = str(Path(__file__).resolve())
    out: list[dict] = []

    def rust(batch: int, threads: int, intra: int) -> dict:
        return {
            "name": f"rust-b{batch}-t{threads}-i{intra}", "kind": "rust", "batch": batch,
            "threads": threads, "intra": intra,
            "cmd": [args.binary, "evaluate", args.model, "--images", images, "--limit", str(n),
                    "--batch-size", str(batch), "--threads", str(threads), "--intra-threads", str(intra),
                    "--ep", "cpu", "--quiet", "--out", f"{tmp}/rust-b{batch}-t{threads}-i{intra}.csv"],
        }

    for batch in args.batches:
        for threads, intra in args.splits:
            out.append(rust(batch, threads, intra))
        out.append({"name": f"ort-b{batch}-i0", "kind": "ort", "batch": batch, "intra": 0,
                    "cmd": [args.throughput, args.model, str(batch), str(math.ceil(n / batch)), "cpu"]})
        for intra in sorted({i for _, i in args.splits}):
            for spin in ([True, False] if args.no_spin else [True]):
                tag = "" if spin else "-nospin"
                out.append({"name": f"ortpy-b{batch}-i{intra}{tag}", "kind": "ortpy", "batch": batch,
                            "intra": intra, "spin": spin,
                            "cmd": [py, me, "ort-py", "--model", args.model, "--batch-size", str(batch),
                                    "--batches", str(math.ceil(n / batch)), "--intra-threads", str(intra)]
                            + ([] if spin else ["--no-spin"])})
    for batch in args.py_batches:
        for spin in ([True, False] if args.no_spin else [True]):
            tag = "" if spin else "-nospin"
            out.append({"name": f"py-b{batch}{tag}", "kind": "py", "batch": batch, "spin": spin,
                        "cmd": [py, me, "py-loop", "--model", args.model, "--images", images, "--limit", str(n),
                                "--batch-size", str(batch), "--out", f"{tmp}/py-b{batch}{tag}.csv"]
                        + ([] if spin else ["--no-spin"])})
    if args.pyref:
        ref_dir = Path(tmp) / "pyref-images"
        if not ref_dir.exists():
            ref_dir.mkdir()
            for f in sorted(Path(images).glob("*.JPEG"))[:n]:
                os.symlink(f.resolve(), ref_dir / f.name)
        out.append({"name": "pyref", "kind": "pyref", "batch": 16,
                    "cmd": [py, str(HERE / "onnx_reference.py"), "--model", args.model, "--metadata",
                            "--images", str(ref_dir), "--out", f"{tmp}/pyref.csv"]})
    return out


THROUGHPUT_RATE = re.compile(r": ([0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?) images/s\s*$")


def throughput_rate(text: str) -> float:
    """The steady-state images/s the `throughput` example prints at full precision (its
    summary line ends `: RATE images/s`); fails loudly when there is none."""
    for line in reversed(text.strip().splitlines()):
        match = THROUGHPUT_RATE.search(line)
        if match:
            return float(match.group(1))
    raise SystemExit(f"error: cannot read images/s from the throughput output: {text[-500:]!r}")


def cmd_run(args: argparse.Namespace) -> int:
    args.splits = [tuple(int(v) for v in s.split(",")) for s in args.splits]
    env = dict(os.environ)
    log = open(args.log, "a")
    with tempfile.TemporaryDirectory(prefix="bench-eval-") as tmp:
        args.tmp = tmp
        todo = variants(args)
        if args.only:
            todo = [v for v in todo if any(v["name"].startswith(p) for p in args.only)]
        for rep in range(args.reps if todo else 0):
            shift = rep % len(todo)
            for v in todo[shift:] + todo[:shift]:
                wall, rss, text, cpu = run_child(v["cmd"], env)
                rate = args.limit / wall
                if v["kind"] in ("ort", "ortpy"):
                    # Steady-state rate reported by the tool itself.
                    if v["kind"] == "ort":
                        rate = throughput_rate(text)
                    else:
                        rate = json.loads(text.strip().splitlines()[-1])["rate"]
                rec = {k: v[k] for k in v if k != "cmd"} | {"rep": rep, "wall_s": wall, "rate": rate,
                                                            "rss_kib": rss, "images": args.limit,
                                                            "cpu_s": cpu,
                                                            "load": os.getloadavg()[0]}
                log.write(json.dumps(rec) + "\n")
                log.flush()
                print(f"rep {rep} {v['name']:<22} {rate:7.1f} images/s  wall {wall:6.2f} s  "
                      f"cpu {cpu:6.2f} s  rss {rss / 1024:6.0f} MiB  load {rec['load']:.1f}", file=sys.stderr)
        if args.rss:
            big = str(Path(args.dir) / "images-10k")
            for rep in range(args.rss_reps):
                for model in args.rss_models or [args.model]:
                    for n in args.rss:
                        stem = Path(model).stem
                        cmd = [args.binary, "evaluate", model, "--images", big, "--limit", str(n),
                               "--ep", "cpu", "--quiet", "--out", f"{tmp}/rss-{n}.csv"]
                        wall, rss, _, cpu = run_child(cmd, env)
                        rec = {"name": f"rss-{stem}-{n}", "kind": "rss", "model": stem, "rep": rep, "images": n,
                               "wall_s": wall, "cpu_s": cpu,
                           "rate": n / wall, "rss_kib": rss, "load": os.getloadavg()[0]}
                        log.write(json.dumps(rec) + "\n")
                        log.flush()
                        print(f"rep {rep} {rec['name']:<22} {n / wall:7.1f} images/s  wall {wall:6.2f} s  "
                              f"rss {rss / 1024:6.0f} MiB", file=sys.stderr)
    return 0


# ------------------------------------------------------------------ report


def cmd_report(args: argparse.Namespace) -> int:
    runs: dict[str, list[dict]] = {}
    for line in Path(args.log).read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            runs.setdefault(r["name"], []).append(r)
    med = {k: statistics.median(r["rate"] for r in v) for k, v in runs.items()}

    def ratio(a: str, b: str) -> str:
        """Median over repetitions of a's rate / b's rate in the same repetition (interleaved, so
        both saw the same machine load), with the ratio of the medians in brackets."""
        rb = {r["rep"]: r["rate"] for r in runs[b]}
        paired = [r["rate"] / rb[r["rep"]] for r in runs[a] if r["rep"] in rb]
        if not paired:
            return f"({med[a] / med[b]:.2f})"
        return f"{statistics.median(paired):.2f} ({med[a] / med[b]:.2f})"

    lines = ["| variant | n | median images/s | min | max | median CPU ms/image | vs ORT alone (ours, default intra) "
             "| vs ORT alone (Python ORT, same intra) | vs Python threaded loop (same batch) | vs onnx_reference.py |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name in sorted(runs, key=lambda k: (runs[k][0]["kind"], runs[k][0].get("batch", 0), k)):
        v = runs[name]
        if v[0]["kind"] == "rss":
            continue
        rates = [r["rate"] for r in v]
        cells = ["", "", "", ""]
        if v[0]["kind"] == "rust":
            b, i = v[0]["batch"], v[0]["intra"]
            if f"ort-b{b}-i0" in med:
                cells[0] = ratio(name, f"ort-b{b}-i0")
            if f"ortpy-b{b}-i{i}" in med:
                cells[1] = ratio(name, f"ortpy-b{b}-i{i}")
            py = f"py-b{b}" if f"py-b{b}" in med else None
            if py:
                cells[2] = ratio(name, py)
            if "pyref" in med:
                cells[3] = ratio(name, "pyref")
        cpu = statistics.median(1e3 * r["cpu_s"] / r["images"] for r in v) if "cpu_s" in v[0] else float("nan")
        lines.append(f"| {name} | {len(v)} | {med[name]:.1f} | {min(rates):.1f} | {max(rates):.1f} | {cpu:.1f} | "
                     + " | ".join(cells) + " |")
    rss = {k: v for k, v in runs.items() if v[0]["kind"] == "rss"}
    if rss:
        lines += ["", "| peak RSS (model-images) | n | median MiB | min | max | wall s (median) |", "|---|---|---|---|---|---|"]
        for name in sorted(rss, key=lambda k: rss[k][0]["images"]):
            kib = [r["rss_kib"] / 1024 for r in rss[name]]
            lines.append(f"| {name} | {len(kib)} | {statistics.median(kib):.0f} | {min(kib):.0f} | "
                         f"{max(kib):.0f} | {statistics.median(r['wall_s'] for r in rss[name]):.1f} |")
        for model in sorted({v[0].get("model", "") for v in rss.values()}):
            names = sorted((k for k in rss if rss[k][0].get("model", "") == model), key=lambda k: rss[k][0]["images"])
            if len(names) < 2:
                continue
            lo, hi = (statistics.median(r["rss_kib"] for r in rss[n]) for n in (names[0], names[-1]))
            lines.append(f"\n{names[-1]} / {names[0]} peak RSS: {hi / lo:.2f}x (target <= 1.2x)")
    if any(v[0]["kind"] != "rss" for v in runs.values()):
        print("Ratios: median of the per-repetition ratios (ratio of the medians in brackets).\n")
    else:
        lines = lines[3:]  # only the peak-RSS table
    print("\n".join(lines))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("images")
    p.add_argument("--dir", required=True)
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--big", type=int, default=10000)
    p.set_defaults(func=cmd_images)

    p = sub.add_parser("run")
    p.add_argument("--dir", required=True)
    p.add_argument("--binary", required=True)
    p.add_argument("--throughput", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--limit", type=int, default=500)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--batches", type=int, nargs="+", default=[32])
    p.add_argument("--splits", nargs="+", default=["0,0"], help="THREADS,INTRA pairs for imagenetx evaluate")
    p.add_argument("--py-batches", type=int, nargs="*", default=[32])
    p.add_argument("--pyref", action="store_true", help="also time python/onnx_reference.py")
    p.add_argument("--only", nargs="*", help="name prefixes of the variants to run")
    p.add_argument("--no-spin", action="store_true",
                   help="also run the Python variants with ONNX Runtime's intra-op spinning off")
    p.add_argument("--rss", type=int, nargs="*", default=[], help="image counts for the peak-RSS runs")
    p.add_argument("--rss-reps", type=int, default=1)
    p.add_argument("--rss-models", nargs="*", help="models for the peak-RSS runs (default: --model)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("py-loop")
    p.add_argument("--model", required=True)
    p.add_argument("--images", required=True)
    p.add_argument("--limit", type=int)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--no-spin", action="store_true", help="session.intra_op.allow_spinning=0")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_py_loop)

    p = sub.add_parser("ort-py")
    p.add_argument("--model", required=True)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--batches", type=int, default=16)
    p.add_argument("--intra-threads", type=int, default=0)
    p.add_argument("--no-spin", action="store_true", help="session.intra_op.allow_spinning=0")
    p.set_defaults(func=cmd_ort_py)

    p = sub.add_parser("report")
    p.add_argument("log")
    p.set_defaults(func=cmd_report)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
