#!/usr/bin/python3
"""lode.mine -> the training arrays MadMiner's estimators read (issue 19, docs/python.md).

    PYTHONPATH=build/python /usr/bin/python3 examples/python/madminer_arrays.py OUT_DIR

MadMiner's ml module trains RASCAL and friends from x, theta0, theta1, y, r_xz, t_xz0 (and t_xz1) arrays saved as .npy;
lode.mine returns exactly those, mined in-process with the joint ratio and score of every event. The script mines 20 000
galton events, checks the gold identities the estimators rely on (E[r_xz | y=1 rows at theta1] = 1 and E[t_xz1] = 0 at
theta1, within 4 standard errors), and writes the arrays as MadMiner names them.
"""
import os
import sys

import numpy as np

import lode

out = sys.argv[1] if len(sys.argv) > 1 else "madminer-arrays"
d = lode.mine("galton", for_="ratio", theta0="uniform:-1..-0.4", theta1=[-0.6], n=20000, seed=1, threads=2)
y = d["y"][:, 0]
at_theta1 = y == 1
# Rows drawn at theta1 (y = 1): r_xz = p(x,z|theta0) / p(x,z|theta1) has mean 1, t_xz1 = score at theta1 has mean 0.
r, t = d["r_xz"][at_theta1, 0], d["t_xz1"][at_theta1, 0]
for name, values, expected in [("r_xz", r, 1.0), ("t_xz1", t, 0.0)]:
    mean, se = values.mean(), values.std() / np.sqrt(len(values))
    assert abs(mean - expected) < 4 * se, f"{name}: mean {mean} is not {expected} within 4 x {se}"
    print(f"E[{name}] over the theta1 rows = {mean:.4f} +- {se:.4f} (expected {expected})")
os.makedirs(out, exist_ok=True)
for name in ["x", "theta0", "theta1", "y", "r_xz", "t_xz0", "t_xz1"]:
    np.save(os.path.join(out, f"{name}_train.npy"), d[name])
print(f"{len(y)} rows -> {out}/{{x,theta0,theta1,y,r_xz,t_xz0,t_xz1}}_train.npy")
