"""Reference values for the interval and paired-test statistics of `imagenetx-factors`.

Reads a JSON request on stdin and writes the statsmodels / numpy answers on stdout, every
float as Python's shortest round-trip `repr` string (so the test reads back the exact double):

    {"wilson":   [[count, nobs, confidence], ...],   -> [[low, high], ...]
     "mcnemar":  [[b, c], ...],                      -> [p, ...]
     "holm":     [[p1, p2, ...], ...],               -> [[adjusted, ...], ...]
     "quantile": [[[x1, x2, ...], q], ...]}          -> [value, ...]

Every key is required (a missing one is an error, not an empty answer): a renamed key must
fail the test, not leave it comparing nothing. Used by crates/factors/tests/integration/stats_reference.rs
with the venv of `just venv`.
"""

import json
import sys

import numpy as np
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint


def f(x):
    return repr(float(x))


def main():
    request = json.load(sys.stdin)
    expected = {"wilson", "mcnemar", "holm", "quantile"}
    if set(request) != expected:
        sys.exit(f"error: request keys {sorted(request)}, expected {sorted(expected)}")
    out = {}
    out["wilson"] = []
    for count, nobs, confidence in request["wilson"]:
        low, high = proportion_confint(count, nobs, alpha=1.0 - confidence, method="wilson")
        out["wilson"].append([f(low), f(high)])
    out["mcnemar"] = []
    for b, c in request["mcnemar"]:
        # McNemar's table: [[both right, A only], [B only, both wrong]]; only b, c matter.
        result = mcnemar(np.array([[0, b], [c, 0]]), exact=True)
        out["mcnemar"].append(f(result.pvalue))
    out["holm"] = []
    for pvalues in request["holm"]:
        _, adjusted, _, _ = multipletests(np.array(pvalues, dtype=float), method="holm")
        out["holm"].append([f(p) for p in adjusted])
    out["quantile"] = []
    for values, q in request["quantile"]:
        out["quantile"].append(f(np.quantile(np.array(values, dtype=float), q)))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
