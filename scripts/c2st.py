#!/usr/bin/env python3
"""C2ST: the classifier two-sample test accuracy, computed as the SBI benchmark (sbibm) does.

    scripts/c2st.py REFERENCE.npy SAMPLES.npy [--seed S] [--folds K]

prints the 5-fold cross-validated accuracy of a classifier telling the two sample sets apart:
0.5 when they are indistinguishable, 1.0 when they are disjoint. As sbibm's metrics.c2st:
both sets are z-scored with the mean and standard deviation (ddof 1) of the first (the
reference), in float32 as sbibm's torch tensors are (scikit-learn then trains in float32:
about 1.5x faster than in float64, the same accuracy within the folds' spread); the
classifier is scikit-learn's MLPClassifier with two hidden layers of 10 * dim ReLU units,
solver Adam, max_iter 10000, random_state = seed (default 1); the folds are KFold(5,
shuffle=True, random_state=seed) over the concatenated sets, labels 0 for the reference
and 1 for the samples; the score is the mean accuracy over the folds.

Needs numpy and scikit-learn (Debian: apt-get install python3-sklearn; scripts/setup.sh).
"""
import argparse
import sys

try:
    import numpy as np
    import sklearn  # noqa: F401 (checked here for the message below)
except ImportError as e:
    sys.exit(f"c2st.py: {e} for {sys.executable}: install Debian's python3-sklearn (scripts/setup.sh) and run "
             f"/usr/bin/python3 {sys.argv[0]} ...")


def c2st(reference, samples, seed=1, folds=5):
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.neural_network import MLPClassifier

    reference = reference.astype(np.float32)
    samples = samples.astype(np.float32)
    mean = reference.mean(axis=0)
    sd = reference.std(axis=0, ddof=1)
    a = (reference - mean) / sd
    b = (samples - mean) / sd
    dim = a.shape[1]
    classifier = MLPClassifier(activation="relu", hidden_layer_sizes=(10 * dim, 10 * dim), max_iter=10000,
                               solver="adam", random_state=seed)
    data = np.concatenate((a, b))
    target = np.concatenate((np.zeros(a.shape[0]), np.ones(b.shape[0])))  # data stays float32
    split = KFold(n_splits=folds, shuffle=True, random_state=seed)
    return float(np.mean(cross_val_score(classifier, data, target, cv=split, scoring="accuracy")))


def load(path):
    a = np.load(path).astype(np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] < 2:
        sys.exit(f"c2st.py: '{path}': expected an array (draws, dim) with at least 2 draws, got shape {a.shape}")
    if not np.isfinite(a).all():
        rows = np.nonzero(~np.isfinite(a).all(axis=1))[0]
        sys.exit(f"c2st.py: '{path}': {rows.size} rows with non-finite values (the first: row {rows[0]})")
    return a


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("reference", help="reference draws (draws, dim) .npy; z-scoring uses its mean and sd")
    p.add_argument("samples", help="draws to compare (draws, dim) .npy")
    p.add_argument("--seed", type=int, default=1, help="classifier and fold seed (default 1, as sbibm)")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5, as sbibm)")
    args = p.parse_args()
    a, b = load(args.reference), load(args.samples)
    if a.shape[1] != b.shape[1]:
        sys.exit(f"c2st.py: '{args.reference}' has {a.shape[1]} columns, '{args.samples}' has {b.shape[1]}")
    if (a.std(axis=0, ddof=1) == 0).any():
        sys.exit(f"c2st.py: '{args.reference}': a column is constant (z-scoring divides by its sd)")
    print(f"{c2st(a, b, args.seed, args.folds):.4f}")


if __name__ == "__main__":
    main()
