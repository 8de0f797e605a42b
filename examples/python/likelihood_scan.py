#!/usr/bin/python3
"""A likelihood scan with matplotlib (issue 19, docs/python.md).

    PYTHONPATH=build/python /usr/bin/python3 examples/python/likelihood_scan.py [OUT.png]

Simulates 100 galton events at theta = -0.7, trains a small RASCAL on 20 000 mined events (lode.mine + lode.train), and
plots q(theta) = -2 [L(theta) - max L] from the estimator's log r summed over the events, next to galton's exact one
(lode.exact_log_likelihood).
"""
import os
import sys
import tempfile

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import lode  # noqa: E402

out = sys.argv[1] if len(sys.argv) > 1 else "likelihood-scan.png"
if not out.endswith(".png"):
    out += ".png"
observed = lode.simulate("galton", [-0.7], n=100, seed=5)
with tempfile.TemporaryDirectory() as d:
    lode.mine("galton", for_="ratio", theta0="uniform:-1..-0.4", theta1=[-0.6], n=20000, seed=1, out=os.path.join(d, "data"))
    rascal = lode.train("rascal", os.path.join(d, "data"), epochs=20, hidden=[32, 32], seed=1)
grid = np.linspace(-1, -0.4, 61)
L = np.array([rascal.log_ratio(observed, [t]).sum() for t in grid])
exact = [lode.exact_log_likelihood("galton", observed, [t]).sum() for t in grid]
exact = np.array(exact)
plt.plot(grid, -2 * (L - L.max()), label="RASCAL (lode.train)")
plt.plot(grid, -2 * (exact - exact.max()), "--", label="exact likelihood")
plt.axhline(1.0, color="gray", lw=0.5)
plt.axhline(3.84, color="gray", lw=0.5)
plt.ylim(0, 12)
plt.xlabel("theta")
plt.ylabel("q(theta)")
plt.legend()
plt.title("galton, 100 events at theta = -0.7")
plt.savefig(out, dpi=100)
mle, mle_exact = grid[np.argmax(L)], grid[np.argmax(exact)]
print(f"MLE: RASCAL {mle:.3f}, exact {mle_exact:.3f} -> {out}")
assert abs(mle - mle_exact) < 0.1, "the estimator's MLE is far from the exact one"
