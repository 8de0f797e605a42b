#!/usr/bin/python3
"""The Python module's overhead (issue 19, BENCHMARKS.md "Python"):

    PYTHONPATH=build/python /usr/bin/python3 tests/bench/python-overhead.py [build/tools/lode] [ROUNDS]

(a) lode.simulate("galton", [-0.8], n=10**6) in this process against `lode simulate galton -n 1000000 --out F.npy`
    (a subprocess, its wall time including start-up), alternating ROUNDS times; the medians and their ratio.
(b) The worst case: lode.simulate called once per event from a Python loop (10^5 events), against the same galton
    board written in numpy and called once per event in the same loop (sampling every nail's Bernoulli with numpy's
    generator), and against one vectorized numpy call for all events (the lean way to simulate galton in Python).
"""
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import lode

LODE = sys.argv[1] if len(sys.argv) > 1 else "build/tools/lode"
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
ROWS, NAILS, START = 20, 31, 15


def p_left(theta, level, pos):
    f = math.sin(math.pi * level / (ROWS - 1))
    h = 2.0 * pos / (NAILS - 1) - 1.0
    return (1.0 - f) / 2.0 + f / (1.0 + np.exp(-10.0 * theta * h))


def galton_numpy_event(theta, rng):
    pos = START
    for level in range(ROWS):
        odd = level % 2 == 1
        if odd and pos == 0:
            left = False
        elif odd and pos == NAILS:
            left = True
        else:
            left = rng.random() < p_left(theta, level, pos)
        pos += -(level % 2) if left else (1 - level % 2)
    return pos


def galton_numpy_vectorized(theta, n, rng):
    pos = np.full(n, START)
    for level in range(ROWS):
        odd = level % 2 == 1
        left = rng.random(n) < p_left(theta, level, pos)
        if odd:
            left = np.where(pos == 0, False, np.where(pos == NAILS, True, left))
        pos = pos + np.where(left, -(level % 2), 1 - level % 2)
    return pos.reshape(n, 1).astype(np.float64)


def main():
    print(f"{os.cpu_count()} processors, {os.uname().nodename}; python {sys.version.split()[0]}, numpy {np.__version__}")
    n = 10**6
    cli, py = [], []
    with tempfile.TemporaryDirectory() as d:
        f = os.path.join(d, "x.npy")
        for _ in range(ROUNDS):
            t0 = time.perf_counter()
            subprocess.run([LODE, "simulate", "galton", "--theta", "-0.8", "-n", str(n), "--seed", "1", "--out", f],
                           check=True, capture_output=True)
            cli.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            x = lode.simulate("galton", [-0.8], n=n, seed=1)
            py.append(time.perf_counter() - t0)
        assert np.array_equal(x, np.load(f))
    mc, mp = statistics.median(cli), statistics.median(py)
    print(f"(a) 10^6 galton events: lode simulate (file) median {mc:.3f} s [{min(cli):.3f}-{max(cli):.3f}], "
          f"lode.simulate median {mp:.3f} s [{min(py):.3f}-{max(py):.3f}]; python / command = {mp / mc:.3f}")

    m = 10**5
    rng = np.random.default_rng(1)
    t0 = time.perf_counter()
    for i in range(m):
        lode.simulate("galton", [-0.8], n=1, seed=1, first_event=i)
    t_lode = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(m):
        galton_numpy_event(-0.8, rng)
    t_np = time.perf_counter() - t0
    t0 = time.perf_counter()
    galton_numpy_vectorized(-0.8, m, rng)
    t_vec = time.perf_counter() - t0
    print(f"(b) 10^5 events, one call per event: lode.simulate {m / t_lode:,.0f} events/s ({1e6 * t_lode / m:.1f} us "
          f"per call); numpy galton per event {m / t_np:,.0f} events/s; numpy vectorized, one call "
          f"{m / t_vec:,.0f} events/s; lode per call / numpy per event = {t_np / t_lode:.1f}x faster")


if __name__ == "__main__":
    main()
