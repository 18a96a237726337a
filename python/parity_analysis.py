#!/usr/bin/env python3
"""Reference side of the factor-analysis parity tests.

Two subcommands:

``generate``
    Seeded synthetic prediction CSVs (``file_name,predicted_class,predicted_probability``
    plus, in some files, extra columns, shuffled rows or reordered columns) that
    exercise the corners of the analysis: a random model, a near-perfect one whose
    mistakes stay in the metaclass or hit a ReaL label, a calibrated ``good`` one,
    one with ~5% of the annotated images absent, one whose probabilities sit on
    0.0, 1.0 and the 15-bin ECE edges k/15 (and one ulp either side), and one that
    is never right under the ``class`` error type. ``--partition train`` writes a
    set keyed by the train annotations' file names instead.

``reference``
    Runs the ImageNet-X toolkit itself (PyPI ``imagenet-x`` 0.0.7, imported, not
    reimplemented) on a folder of prediction CSVs for one or more configurations
    and writes the tables ``imagenetx analyze --out`` writes, in the same layout:
    ``accuracies_per_factor.csv``, ``accuracies_per_factor_metaclass.csv``,
    ``error_ratios.csv``, ``calibration.csv``, ``prevalence_shift.csv``,
    ``prevalence_shift_metaclass.csv``. With ``--annotations-config`` it writes
    the tables of ``imagenetx annotations --out``: ``factor_counts.csv``,
    ``metaclass_prevalence_shift.csv``, ``factor_correlation.csv``.

Where the toolkit is used as is, and where it cannot be:

* Predictions are loaded like ``utils.load_model_predictions`` does for CSV files
  (``pd.read_csv(path).set_index("file_name")``, model name = file stem). The
  toolkit's function itself is only usable on a folder whose every file lists
  the 50,000 validation images in ``filename_label.csv`` order: it computes a
  top-1 accuracy it then discards with ``df["predicted_class"] == labels``, and
  pandas raises "Can only compare identically-labeled Series objects" for any
  other file (rows missing, rows shuffled, train file names). So ``reference``
  loads the files the same way minus that line, and checks, for every file the
  toolkit can read, that its loader returns the identical frame.
* ``worst_100_classes`` is ``aggregate.worst_k_class_acc(k=100)``, whose
  ``sort_values()`` is a quicksort: which of several classes tied at the k-th
  accuracy it keeps is unspecified, and the mean over their images depends on
  it. The tables hold the same function with a stable sort (ties broken by
  class index, the order ``groupby`` yields); ``notes.json`` counts the models
  for which the toolkit's own tie order gives a different value.
* ``Prevalence.__init__`` always loads the default annotations (top factors,
  prototypes filtered) with ``load_model_predictions`` and uses ``is_correct``.
  ``reference`` builds the object with the same attribute assignments in the
  same order, but with the configuration's annotations and ``is_correct`` set
  to the configuration's error column, then calls the toolkit's own methods.
  For ``val,top,class,filter`` this is exactly the toolkit's computation.
* Train partition: ``load_annotations(partition="train")`` and
  ``augment_model_predictions`` work; ``is_correct_real`` only knows validation
  file names, so every train image counts as a ReaL error.
* ``--skip-empty-real`` has no toolkit equivalent: the reference drops the rows
  whose ReaL list is empty from the augmented frame, then calls the toolkit's
  functions on what is left (prevalence tables are not written for it).

Run with the venv of ``python/requirements.txt`` (``just venv``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

N_VAL = 50_000
N_CLASSES = 1000
ECE_BINS = 15


# --------------------------------------------------------------------------- generate


def _read_annotation_labels(annotations: Path, partition: str):
    """(file names, label) of every annotated image of the partition, file order."""
    import pandas as pd

    frame = pd.read_json(annotations / f"imagenet_x_{partition}_top_factor.jsonl", lines=True)
    return frame["file_name"].to_numpy(), frame["class"].to_numpy()


def _metaclass_of_class(annotations: Path) -> np.ndarray:
    """The toolkit's 17-way metaclass of each of the 1,000 classes (utils.to_metaclass)."""
    import pandas as pd

    mapping = pd.read_csv(annotations / "imagenet_1k_classes_to_100_metaclasses.csv")
    from imagenet_x.utils import METACLASSES

    names = mapping["name"].where(mapping["name"].isin(METACLASSES), "other")
    return names.to_numpy()


def _format_prob(p: float) -> str:
    return repr(float(p))


def _write_csv(path: Path, header: list[str], columns: list[list[str]]) -> None:
    rows = zip(*columns)
    with open(path, "w", newline="\n") as f:
        f.write(",".join(header) + "\n")
        for row in rows:
            f.write(",".join(row) + "\n")


def _wrong_class(rng, labels: np.ndarray) -> np.ndarray:
    """A uniformly drawn class different from each label."""
    shift = rng.integers(1, N_CLASSES, size=len(labels))
    return (labels + shift) % N_CLASSES


def generate_val(out: Path, annotations: Path, seed: int) -> None:
    import pandas as pd

    rng = np.random.default_rng(seed)
    label_frame = pd.read_csv(annotations / "filename_label.csv")
    label_of = dict(zip(label_frame["file_name"], label_frame["label"]))
    names = np.array([f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(1, N_VAL + 1)])
    labels = np.array([label_of[n] for n in names])
    with open(annotations / "imagenet_real_labels.jsonl") as f:
        real = json.load(f)
    meta = _metaclass_of_class(annotations)
    by_meta: dict[str, np.ndarray] = {m: np.flatnonzero(meta == m) for m in np.unique(meta)}

    out.mkdir(parents=True, exist_ok=True)

    # random: uniform classes and probabilities, rows shuffled.
    cls = rng.integers(0, N_CLASSES, size=N_VAL)
    prob = rng.random(N_VAL)
    order = rng.permutation(N_VAL)
    _write_csv(
        out / "random.csv",
        ["file_name", "predicted_class", "predicted_probability"],
        [names[order].tolist(), [str(c) for c in cls[order]], [_format_prob(p) for p in prob[order]]],
    )

    # near_perfect: ~97% right; of the mistakes a third stays in the metaclass,
    # a third is another ReaL label of the image, a third is anything else.
    # Columns reordered.
    cls = labels.copy()
    wrong = rng.random(N_VAL) < 0.03
    kind = rng.integers(0, 3, size=N_VAL)
    for i in np.flatnonzero(wrong):
        label = labels[i]
        pick = None
        if kind[i] == 0:
            same = by_meta[meta[label]]
            same = same[same != label]
            if len(same):
                pick = int(rng.choice(same))
        elif kind[i] == 1:
            others = [c for c in real[i] if c != label]
            if others:
                pick = int(rng.choice(others))
        if pick is None:
            pick = int((label + rng.integers(1, N_CLASSES)) % N_CLASSES)
        cls[i] = pick
    prob = np.where(cls == labels, 0.9 + 0.1 * rng.random(N_VAL), 0.3 + 0.6 * rng.random(N_VAL))
    _write_csv(
        out / "near_perfect.csv",
        ["predicted_probability", "file_name", "predicted_class"],
        [[_format_prob(p) for p in prob], names.tolist(), [str(c) for c in cls]],
    )

    # good: ~75% right, probability correlated with correctness, extra columns.
    right = rng.random(N_VAL) < 0.75
    cls = np.where(right, labels, _wrong_class(rng, labels))
    prob = np.where(right, 1.0 - 0.5 * rng.random(N_VAL) ** 2, 0.05 + 0.75 * rng.random(N_VAL))
    margin = rng.normal(size=N_VAL)
    order = rng.permutation(N_VAL)
    _write_csv(
        out / "good.csv",
        ["file_name", "predicted_class", "predicted_probability", "logit_margin", "source"],
        [
            names[order].tolist(),
            [str(c) for c in cls[order]],
            [_format_prob(p) for p in prob[order]],
            [repr(float(m)) for m in margin[order]],
            ["synthetic"] * N_VAL,
        ],
    )

    # missing_rows: ~70% right, ~5% of the images absent.
    right = rng.random(N_VAL) < 0.70
    cls = np.where(right, labels, _wrong_class(rng, labels))
    prob = np.where(right, 0.4 + 0.6 * rng.random(N_VAL), rng.random(N_VAL))
    keep = rng.random(N_VAL) >= 0.05
    _write_csv(
        out / "missing_rows.csv",
        ["file_name", "predicted_class", "predicted_probability"],
        [names[keep].tolist(), [str(c) for c in cls[keep]], [_format_prob(p) for p in prob[keep]]],
    )

    # edges: probabilities 0.0, 1.0, k/15 and one ulp either side, written in
    # several spellings ("0", "1", "1.0", "0.0", exponent form).
    edges = [k / ECE_BINS for k in range(ECE_BINS + 1)]
    values = sorted(
        set(edges)
        | {float(np.nextafter(e, 2.0)) for e in edges[:-1]}
        | {float(np.nextafter(e, -1.0)) for e in edges[1:]}
    )
    right = rng.random(N_VAL) < 0.5
    cls = np.where(right, labels, _wrong_class(rng, labels))
    pick = rng.integers(0, len(values), size=N_VAL)
    spelled = []
    for j, v in zip(pick, rng.integers(0, 4, size=N_VAL)):
        p = values[j]
        if p == 0.0:
            spelled.append(["0", "0.0", "0e0", "0.000"][v])
        elif p == 1.0:
            spelled.append(["1", "1.0", "1e0", "1.000"][v])
        elif v == 3:
            spelled.append(f"{p:.17e}")
        else:
            spelled.append(repr(p))
    _write_csv(
        out / "edges.csv",
        ["file_name", "predicted_class", "predicted_probability"],
        [names.tolist(), [str(c) for c in cls], spelled],
    )

    # zero_correct: never the annotated class (so every `class` accuracy is 0/n
    # and the toolkit's per-factor accuracies are undefined). Rows in
    # filename_label.csv order, the one order the toolkit's own loader accepts.
    names_fl = label_frame["file_name"].to_numpy()
    cls = _wrong_class(rng, label_frame["label"].to_numpy())
    prob = rng.random(N_VAL)
    _write_csv(
        out / "zero_correct.csv",
        ["file_name", "predicted_class", "predicted_probability"],
        [names_fl.tolist(), [str(c) for c in cls], [_format_prob(p) for p in prob]],
    )


def generate_train(out: Path, annotations: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    names, labels = _read_annotation_labels(annotations, "train")
    # A few images the annotations do not cover, in the same naming scheme.
    extra = np.array([f"n01440764_{90000 + i}.JPEG" for i in range(50)])
    extra_labels = np.zeros(len(extra), dtype=int)
    names = np.concatenate([names, extra])
    labels = np.concatenate([labels, extra_labels])
    n = len(names)
    out.mkdir(parents=True, exist_ok=True)

    right = rng.random(n) < 0.75
    cls = np.where(right, labels, _wrong_class(rng, labels))
    prob = np.where(right, 1.0 - 0.5 * rng.random(n) ** 2, 0.05 + 0.75 * rng.random(n))
    order = rng.permutation(n)
    _write_csv(
        out / "train_good.csv",
        ["file_name", "predicted_class", "predicted_probability"],
        [names[order].tolist(), [str(c) for c in cls[order]], [_format_prob(p) for p in prob[order]]],
    )
    cls = rng.integers(0, N_CLASSES, size=n)
    prob = rng.random(n)
    _write_csv(
        out / "train_random.csv",
        ["file_name", "predicted_class", "predicted_probability"],
        [names.tolist(), [str(c) for c in cls], [_format_prob(p) for p in prob]],
    )


# --------------------------------------------------------------------------- reference

ERROR_COLUMN = {"class": "is_correct", "metaclass": "is_metaclass_correct", "real-class": "is_correct_real"}


def _fmt(value) -> str:
    """Shortest round-trip decimal; NaN empty (as pandas' to_csv writes it)."""
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    v = float(value)
    if math.isnan(v):
        return ""
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return repr(v)


def _write_table(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="\n") as f:
        f.write(",".join(header) + "\n")
        for row in rows:
            f.write(",".join(x if isinstance(x, str) else _fmt(x) for x in row) + "\n")


def _verify_annotations(annotations: Path) -> None:
    """The toolkit reads its own package copy; make sure it is the same data."""
    from imagenet_x.utils import get_annotation_path

    package = Path(str(get_annotation_path()))
    for name in sorted(os.listdir(annotations)):
        mine = annotations / name
        theirs = package / name
        if not mine.is_file():
            continue
        if not theirs.is_file():
            sys.exit(f"error: {name} is in {annotations} but not in the toolkit's {package}")
        if hashlib.sha256(mine.read_bytes()).digest() != hashlib.sha256(theirs.read_bytes()).digest():
            sys.exit(f"error: {mine} differs from the toolkit's {theirs}")


def load_predictions(folder: Path) -> dict:
    """utils.load_model_predictions for CSV files, minus its unused top-1 line."""
    import pandas as pd

    models = {}
    for path in os.listdir(folder):  # same order as the toolkit
        if path.endswith(".csv"):
            models[Path(path).stem] = pd.read_csv(os.path.join(folder, path)).set_index("file_name")
        elif path.endswith("DS_Store"):
            continue
        else:
            raise ValueError(f"Unknown file type {path}")
    return models


def check_loader(folder: Path, models: dict, notes: dict) -> None:
    """For each file the toolkit's own loader can read, require the same frame;
    and require pandas' float parsing to be the correctly rounded one."""
    import pandas as pd
    from imagenet_x.utils import load_model_predictions

    for name, frame in models.items():
        exact = pd.read_csv(folder / f"{name}.csv", float_precision="round_trip").set_index("file_name")
        p, q = frame["predicted_probability"].to_numpy(), exact["predicted_probability"].to_numpy()
        if not np.array_equal(p, q):
            sys.exit(f"error: pandas parses {int((p != q).sum())} probabilities of {name} off the exact value")

    readable, unreadable = [], []
    for name, frame in models.items():
        with tempfile.TemporaryDirectory() as tmp:
            os.symlink(os.path.abspath(folder / f"{name}.csv"), os.path.join(tmp, f"{name}.csv"))
            try:
                theirs, _ = load_model_predictions(tmp)
            except ValueError as err:
                unreadable.append(f"{name}: {err}")
                continue
        if not theirs[name].equals(frame):
            sys.exit(f"error: the toolkit's load_model_predictions reads {name} differently")
        readable.append(name)
    notes["toolkit_loader_reads"] = readable
    notes["toolkit_loader_rejects"] = unreadable


def worst_k_class_acc_stable(all_df, k=100, error_type="is_correct"):
    """aggregate.worst_k_class_acc with sort_values(kind="stable")."""
    worst_classes = (
        all_df.groupby(["model", "class"])[error_type]
        .mean()
        .sort_values(kind="stable")
        .groupby(level="model")
        .head(k)
        .index
    )
    return all_df.set_index(["model", "class"]).loc[worst_classes].groupby("model")[error_type].mean()


def real_list_empty(file_names) -> "np.ndarray":
    import pandas as pd
    from imagenet_x.utils import get_annotation_path

    with open(get_annotation_path() / "imagenet_real_labels.jsonl") as f:
        real = json.load(f)
    empty = {f"ILSVRC2012_val_{i + 1:08d}.JPEG" for i, labels in enumerate(real) if not labels}
    return pd.Series(file_names).isin(empty).to_numpy()


_ANNOTATIONS: dict = {}
_AUGMENTED: dict = {}


def _annotations(partition: str, factors: str, prototypes: str):
    """utils.load_annotations, read once per selection (callers get a copy)."""
    from imagenet_x import utils

    key = (partition, factors, prototypes)
    if key not in _ANNOTATIONS:
        _ANNOTATIONS[key] = utils.load_annotations(
            which_factor=factors, partition=partition, filter_prototypes=prototypes == "filter"
        )
    return _ANNOTATIONS[key].copy()


def fill_zero_correct(table, all_df, groupby, error_col, factors, notes, name):
    """The toolkit's one accident: `_compute_factor_accuracies` counts correct predictions
    with `all_df[all_df[error_type]].groupby(...)`, so a group (model, or model x metaclass)
    with no correct prediction at all has no row there and every factor accuracy becomes NaN,
    although 0 of n images were right. imagenetx reports 0 for such cells; this puts 0.0
    where the toolkit left NaN for a group that has images of the factor and no correct
    prediction, recomputes `worst_factor` with the toolkit's own formula, and counts the
    cells changed (reported in the notes). Nothing else is touched."""
    totals = all_df.groupby(groupby)[factors].sum()
    correct = all_df.groupby(groupby)[error_col].sum()
    changed = 0
    for key in table.index:
        if key in correct.index and correct.loc[key] == 0:
            for f in factors:
                if pd_isnan(table.at[key, f]) and totals.at[key, f] > 0:
                    table.at[key, f] = 0.0
                    changed += 1
            if "worst_factor" in table.columns:
                table.at[key, "worst_factor"] = table.loc[key, factors].min()
    notes.setdefault("zero_correct_cells_filled", {})[name] = changed
    return table


def pd_isnan(value) -> bool:
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def run_config(preds: Path, out: Path, spec: dict, models_cache: dict, notes: dict) -> None:
    import pandas as pd
    from imagenet_x import aggregate, utils
    from imagenet_x.prevalence import Prevalence

    FACTORS, METACLASSES = utils.FACTORS, utils.METACLASSES
    out.mkdir(parents=True, exist_ok=True)
    error_col = ERROR_COLUMN[spec["error"]]

    annotations = _annotations(spec["partition"], spec["factors"], spec["prototypes"])
    key = (id(models_cache), spec["partition"], spec["factors"], spec["prototypes"], spec["human"])
    if key not in _AUGMENTED:
        models = {name: frame.copy() for name, frame in models_cache.items()}
        _AUGMENTED.clear()  # keep one at a time: configurations come grouped
        _AUGMENTED[key] = (models, utils.augment_model_predictions(annotations.copy(), models, add_human_performance=spec["human"]))
    models, all_df = _AUGMENTED[key]
    all_df = all_df.copy()
    if spec.get("skip_empty_real"):
        all_df = all_df[~real_list_empty(all_df["file_name"])].reset_index(drop=True)

    model_names = sorted(all_df["model"].unique())

    # accuracies_per_factor.csv (aggregate.generate_all_tables layout).
    acc = aggregate.compute_factor_accuracies(all_df, FACTORS, error_col)
    acc = fill_zero_correct(acc, all_df, "model", error_col, FACTORS, notes, spec["name"])
    worst_stable = worst_k_class_acc_stable(all_df, k=100, error_type=error_col)
    worst_toolkit = aggregate.worst_k_class_acc(all_df, k=100, error_type=error_col)
    acc["worst_100_classes"] = worst_stable
    ties = {}
    for m in model_names:
        a, b = float(worst_stable.get(m, np.nan)), float(worst_toolkit.get(m, np.nan))
        if not (a == b or (math.isnan(a) and math.isnan(b))):
            ties[m] = {"stable": a, "toolkit_quicksort": b, "diff": b - a}
    notes.setdefault("worst_100_tie_order_differs", {})[spec["name"]] = ties
    cols = FACTORS + ["worst_factor", "average", "worst_100_classes"]
    _write_table(
        out / "accuracies_per_factor.csv",
        ["model"] + cols,
        [[m] + [acc.at[m, c] if m in acc.index else np.nan for c in cols] for m in model_names],
    )

    # accuracies_per_factor_metaclass.csv, the toolkit's row order.
    meta = aggregate.compute_factor_metaclass_accuracies(all_df, FACTORS, error_col, METACLASSES)
    meta = fill_zero_correct(meta, all_df, ["model", "metaclass"], error_col, FACTORS, notes, spec["name"] + "/metaclass")
    cols = FACTORS + ["worst_factor", "average"]
    rows = []
    for (model, metaclass), row in meta.iterrows():
        rows.append([model, metaclass] + [row[c] for c in cols])
    _write_table(out / "accuracies_per_factor_metaclass.csv", ["model", "metaclass"] + cols, rows)

    # error_ratios.csv
    ratio = aggregate.error_ratio(acc)
    _write_table(
        out / "error_ratios.csv",
        ["model"] + FACTORS,
        [[m] + [ratio.at[m, c] for c in FACTORS] for m in model_names],
    )

    # calibration.csv
    cal = aggregate.compute_factor_calibration_errors(all_df, FACTORS, error_col)
    cols = FACTORS + ["worst_factor", "average"]
    _write_table(
        out / "calibration.csv",
        ["model"] + cols,
        [[m] + [cal.at[m, c] if m in cal.index else np.nan for c in cols] for m in model_names],
    )

    if spec.get("skip_empty_real"):
        return

    # Prevalence: Prevalence.__init__'s assignments, with this configuration's
    # annotations and error column.
    prev_df = all_df.copy()
    prev_df["is_correct"] = prev_df[error_col]
    prev = Prevalence.__new__(Prevalence)
    prev.models = models
    prev.annotations = annotations
    prev.all_df = prev_df
    prev.factors = FACTORS
    prev.metaclasses = METACLASSES
    prev.group = "metaclass"
    prev.metaclass_prevalence = prev.compute_metaclass_prevalence()
    prev.metaclass_prevalence_shift = prev.compute_metaclass_prevalence_shift()

    rows = []
    for m in model_names:
        long = prev.compute_misclassification_shift(m).set_index("factor")["shift"]
        rows.append([m] + [long[f] for f in FACTORS])
    _write_table(out / "prevalence_shift.csv", ["model"] + FACTORS, rows)

    rows = []
    for m in model_names:
        shift = prev.compute_metaclass_misclassification_shift(m)
        if "metaclass" in shift.columns:
            shift = shift.set_index("metaclass")
        scored = prev_df[prev_df.model == m].groupby("metaclass").size()
        for metaclass, row in shift.iterrows():
            accuracy = row["accuracy"]
            # Same accident in compute_metaclass_accuracy: no correct row, NaN accuracy.
            if pd_isnan(accuracy) and scored.get(metaclass, 0) > 0:
                accuracy = 0.0
            rows.append([m, metaclass] + [row[f] for f in FACTORS] + [accuracy])
    _write_table(out / "prevalence_shift_metaclass.csv", ["model", "metaclass"] + FACTORS + ["accuracy"], rows)


def run_annotations_config(out: Path, spec: dict) -> None:
    from imagenet_x import aggregate, utils
    from imagenet_x.prevalence import Prevalence

    FACTORS, METACLASSES = utils.FACTORS, utils.METACLASSES
    out.mkdir(parents=True, exist_ok=True)
    annotations = _annotations(spec["partition"], spec["factors"], spec["prototypes"])

    has = annotations[FACTORS] == 1
    per_meta = has.groupby(annotations["metaclass"]).sum()
    sizes = annotations.groupby("metaclass").size()
    rows = []
    for m in METACLASSES:
        rows.append([m] + [int(per_meta.at[m, f]) if m in per_meta.index else 0 for f in FACTORS] + [int(sizes.get(m, 0))])
    rows.append(["all"] + [int(has[f].sum()) for f in FACTORS] + [len(annotations)])
    _write_table(out / "factor_counts.csv", ["metaclass"] + FACTORS + ["images"], rows)

    prev = Prevalence.__new__(Prevalence)
    prev.annotations = annotations
    prev.factors = FACTORS
    prev.metaclasses = METACLASSES
    prev.group = "metaclass"
    shift = prev.compute_metaclass_prevalence_shift()
    _write_table(
        out / "metaclass_prevalence_shift.csv",
        ["metaclass"] + FACTORS,
        [[m] + [row[f] for f in FACTORS] for m, row in shift.iterrows()],
    )

    corr, _ = aggregate.spearman_corr_heatmaps(annotations, FACTORS, METACLASSES)
    names = list(corr.columns)
    _write_table(
        out / "factor_correlation.csv",
        ["factor"] + names,
        [[a] + [corr.at[a, b] for b in names] for a in names],
    )


def _parse_spec(text: str, keys: list[str], defaults: dict) -> dict:
    """NAME=key:value,key:value,..."""
    name, _, rest = text.partition("=")
    spec = dict(defaults, name=name)
    for item in filter(None, rest.split(",")):
        k, _, v = item.partition(":")
        if k not in keys:
            sys.exit(f"error: unknown key {k!r} in {text!r} (known: {', '.join(keys)})")
        spec[k] = v
    spec["human"] = str(spec.get("human", "0")) in ("1", "true", "yes")
    spec["skip_empty_real"] = str(spec.get("skip_empty_real", "0")) in ("1", "true", "yes")
    return spec


def cmd_reference(args) -> int:
    import warnings

    warnings.simplefilter("ignore")  # spearmanr / groupby chatter
    _verify_annotations(args.annotations)
    notes: dict = {}
    args.out.mkdir(parents=True, exist_ok=True)
    loaded: dict = {}
    specs = [
        _parse_spec(
            text,
            ["partition", "factors", "error", "prototypes", "human", "skip_empty_real"],
            {"partition": "val", "factors": "top", "error": "class", "prototypes": "filter"},
        )
        for text in args.config or []
    ]
    # Configurations that share annotations and models share one augmented frame.
    specs.sort(key=lambda s: (s["partition"], s["factors"], s["prototypes"], s["human"]))
    for spec in specs:
        folder = args.train_preds if spec["partition"] == "train" and args.train_preds else args.preds
        if folder is None:
            sys.exit("error: --config needs --preds")
        if folder not in loaded:
            loaded[folder] = load_predictions(folder)
            if args.check_loader:
                check_loader(folder, loaded[folder], notes.setdefault("loader", {}).setdefault(str(folder), {}))
        run_config(folder, args.out / spec["name"], spec, loaded[folder], notes)
    for text in args.annotations_config or []:
        spec = _parse_spec(
            text, ["partition", "factors", "prototypes"], {"partition": "val", "factors": "top", "prototypes": "filter"}
        )
        run_annotations_config(args.out / spec["name"], spec)
    with open(args.out / "notes.json", "w") as f:
        json.dump(notes, f, indent=2, sort_keys=True)
    return 0


def cmd_generate(args) -> int:
    if args.partition == "val":
        generate_val(args.out, args.annotations, args.seed)
    else:
        generate_train(args.out, args.annotations, args.seed)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write seeded synthetic prediction CSVs into a folder")
    g.add_argument("--out", type=Path, required=True)
    g.add_argument("--annotations", type=Path, required=True, help="folder of the ImageNet-X annotation files")
    g.add_argument("--partition", choices=["val", "train"], default="val")
    g.add_argument("--seed", type=int, default=20221212)
    g.set_defaults(func=cmd_generate)

    r = sub.add_parser(
        "reference",
        help="run the toolkit on a folder of predictions and write the tables",
        description="Configurations are NAME=key:value,... with keys partition (val|train), "
        "factors (top|multi), error (class|metaclass|real-class), prototypes (filter|keep), "
        "human (0|1), skip_empty_real (0|1); each writes OUT/NAME/*.csv. "
        "Annotation configurations take partition, factors, prototypes.",
    )
    r.add_argument("--preds", type=Path, help="folder of prediction CSVs")
    r.add_argument("--train-preds", type=Path, help="folder for the train-partition configurations (default --preds)")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--annotations", type=Path, required=True, help="must hold the toolkit's own files")
    r.add_argument("--config", action="append", help="NAME=partition:val,factors:top,error:class,...")
    r.add_argument("--annotations-config", action="append", help="NAME=partition:val,factors:top,prototypes:filter")
    r.add_argument("--check-loader", action="store_true", help="compare with the toolkit's load_model_predictions")
    r.set_defaults(func=cmd_reference)

    args = parser.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
