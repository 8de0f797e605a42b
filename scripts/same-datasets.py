#!/usr/bin/python3
"""Compares two datasets mined by lode (directories of .npy files and meta.json):

    /usr/bin/python3 scripts/same-datasets.py DIR_A DIR_B LABEL

x, theta, theta0, theta1 and y must be identical; every other array (the gold: r_xz, t_xz,
...) identical or within 1e-12 relative, with the same non-finite entries; the row counts in
meta.json equal. Prints LABEL, the rows, OK or BAD with the arrays that differ, and the
largest relative difference; exits 1 on BAD (issue 20: mined datasets must not change).
"""
import sys, numpy as np, os, json
a, b = sys.argv[1], sys.argv[2]
worst = 0.0; bad = []
for f in sorted(os.listdir(a)):
    if not f.endswith('.npy'): continue
    x = np.load(os.path.join(a, f)); y = np.load(os.path.join(b, f))
    if x.shape != y.shape: bad.append(f + ' shape'); continue
    if np.array_equal(x, y, equal_nan=True): continue
    if f in ('x.npy', 'theta.npy', 'theta0.npy', 'theta1.npy', 'y.npy'): bad.append(f + ' differs'); continue
    fin = np.isfinite(x) & np.isfinite(y)
    if not np.array_equal(np.isfinite(x), np.isfinite(y)): bad.append(f + ' finiteness'); continue
    rel = np.max(np.abs(x[fin] - y[fin]) / np.maximum(np.abs(x[fin]), 1e-300))
    worst = max(worst, rel)
    if rel > 1e-12: bad.append(f'{f} rel {rel:g}')
ma, mb = json.load(open(a + '/meta.json')), json.load(open(b + '/meta.json'))
ok = not bad and ma['rows'] == mb['rows']
print(sys.argv[3], 'rows', ma['rows'], mb['rows'], 'OK' if not bad and ma['rows'] == mb['rows'] else 'BAD ' + str(bad), 'worst rel %.2g' % worst)
sys.exit(0 if ok else 1)
