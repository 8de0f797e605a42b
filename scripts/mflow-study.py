#!/usr/bin/python3
"""The polynomial-surface study of issue 16: AF, PIE, M-flow and Me-flow against the true manifold and posterior.

    /usr/bin/python3 scripts/mflow-study.py RESULTS_DIR [--algorithms A,..] [--seeds S,..|A-B] [--epochs E]
                                            [--train-args '...'] [--lode PATH] [--dry-run] [--summary]
    /usr/bin/python3 scripts/mflow-study.py RESULTS_DIR --circle      # the small circle trainings (pictures only)
    /usr/bin/python3 scripts/mflow-study.py RESULTS_DIR --plot [--images DIR] [--plot-seed S]
    /usr/bin/python3 scripts/mflow-study.py --self-test               # checks of the metrics; needs only lode

One directory per cell (algorithm x seed) under RESULTS_DIR (keep it outside the repository); what is finished
is skipped, so the study can be run in pieces. Once: the training data (100,000 events, theta ~ U(-1, 1), `lode
mine polynomial_surface --for density --theta prior`, one data set shared by all cells as in the reference), the
test data (10,000 events at theta = 0, `lode simulate`), the 20 observations (its first 20 rows) and their exact
posterior on a grid (`lode infer --exact`). Per cell: `lode train` (its CPU time), 10,000 generated samples at
theta = 0 (`lode sample`) and their mean distance from the true manifold, the mean reconstruction error on the
test data (`lode evaluate --reconstruct`), the model's posterior on the same grid and its squared MMD to the
exact one. docs/mflow-study.md defines every number. At the end (or alone with --summary) a Markdown table of the
medians over seeds beside the reference's published medians.

Every command is appended to RESULTS_DIR/commands.log with the lode version; each cell's output to its log.txt.
A failed command marks its cell FAILED (with the command's last lines); a rerun skips it unless --retry-failed.
Use Debian's python3 (numpy); gnuplot for --plot.
"""
import argparse
import csv
import datetime
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

try:
    import numpy as np
except ImportError as e:
    sys.exit(f"mflow-study.py: {e} for {sys.executable}: run it with Debian's /usr/bin/python3 "
             f"(apt-get install python3-numpy)")

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MODEL = "polynomial_surface"

# algorithm -> (lode train estimator, --schedule or None); all but af get --latent-dim 2 (1 for the circle).
ALGORITHMS = {
    "af": ("af", None),
    "pie": ("pie", None),
    "mflow-sequential": ("mflow", "sequential"),
    "mflow-alternating": ("mflow", "alternating"),
    "meflow-sequential": ("meflow", "sequential"),
}
# Not trained: generated samples are exact simulations, the posterior is the exact one (metrics' floor: 0).
TRUTH = "truth"
LABEL = {"af": "AF", "pie": "PIE", "mflow-sequential": "M-flow (M/D sequential)",
         "mflow-alternating": "M-flow (M/D alternating)", "meflow-sequential": "Mₑ-flow (M/D sequential)",
         TRUTH: "truth (exact simulations)"}
# The reference code's published medians over 5 runs (issue 16): distance, reconstruction error, posterior MMD.
REFERENCE = {
    "af": (0.005, None, 0.071),
    "pie": (0.035, 1.278, 0.131),
    "mflow-alternating": (0.002, 0.003, 0.020),
    "mflow-sequential": (0.009, 0.013, 0.017),
    "meflow-sequential": (0.002, 0.002, 0.007),
}
MANIFOLD_LEARNERS = {"mflow-sequential", "mflow-alternating", "meflow-sequential"}

# Fixed seeds: the training data, the test data (and with it the observations), the circle's data.
TRAIN_SEED = 16
TEST_SEED = 1016
CIRCLE_SEED = 2016
THETA_TEST = 0.0
N_OBS = 20
CSV_FIELDS = ["algorithm", "seed", "distance", "distance_median", "reconstruction", "mmd2", "post_mean", "post_sd",
              "train_cpu_s", "train_wall_s", "posterior_via", "notes", "lode_version"]


class Failed(Exception):
    pass


# ---------------------------------------------------------------------------------------------------------------
# The true manifolds (models/polynomial_surface.cpp, models/circle.cpp; ../shared/data/mflow/polynomial_surface.md)
# ---------------------------------------------------------------------------------------------------------------
PS_COEF = np.array([
    -1.2168586603514988, 1.5222185058080313, -1.2137184774523713, 0.056508287792492326,
    -0.023891580117654843, -0.04667900863500347, -0.05568486624474405, -0.007674946358297077,
    -0.05717928991876596, -0.05169484232009674, 0.01371356976614217, 0.0001957832101733702,
    -0.007085684741511887, -0.0066261159038441386, 0.0033305025718645487, -0.008323193992394515,
    -0.010951862645717694, 0.004081067860220057, -0.004647779681845426, -0.008806008204852736,
    0.012115704379651746])
PS_ROT = np.array([
    [0.9738872159123575, -0.22686056735015556, -0.008830269760482467],
    [0.2270319382053587, 0.9730738938817304, 0.03979567916953876],
    [-0.0004355653746274851, -0.04076125645036201, 0.9991688196973484]])
# (i, j) of the monomials z0^i z1^j in graded order: degree d = 0..5, within a degree the power of z0 falls.
PS_POWERS = [(d - j, j) for d in range(6) for j in range(d + 1)]


def ps_height(z0, z1, gradient=False):
    """f(z) = P(z) exp(-0.1 |z|^2); with gradient=True also (df/dz0, df/dz1)."""
    z0, z1 = np.asarray(z0, float), np.asarray(z1, float)
    p = np.zeros_like(z0)
    d0 = np.zeros_like(z0)
    d1 = np.zeros_like(z0)
    for c, (i, j) in zip(PS_COEF, PS_POWERS):
        p += c * z0 ** i * z1 ** j
        if i:
            d0 += c * i * z0 ** (i - 1) * z1 ** j
        if j:
            d1 += c * j * z0 ** i * z1 ** (j - 1)
    e = np.exp(-0.1 * (z0 * z0 + z1 * z1))
    if not gradient:
        return p * e
    return p * e, (d0 - 0.2 * z0 * p) * e, (d1 - 0.2 * z1 * p) * e


def ps_embed(z0, z1):
    """x = R (z0, z1, f(z)), rows."""
    return np.stack([z0, z1, ps_height(z0, z1)], axis=-1) @ PS_ROT.T


def ps_unrotate(x):
    """w = R^T x per row: the surface's own frame."""
    return np.asarray(x, float) @ PS_ROT


def ps_offset(x):
    """w2 - f(w0, w1), w = R^T x: polynomial_surface_offset."""
    w = ps_unrotate(x)
    return w[:, 2] - ps_height(w[:, 0], w[:, 1])


def ps_distance(x):
    """|w2 - f(w0, w1)|: polynomial_surface_distance, the reference's distance_from_manifold."""
    return np.abs(ps_offset(x))


def ps_log_likelihood(x, theta):
    """Exact log p(x|theta) per row w.r.t. the surface's area (polynomial_surface_log_likelihood)."""
    w = ps_unrotate(x)
    z0, z1 = w[:, 0], w[:, 1]
    _, g0, g1 = ps_height(z0, z1, gradient=True)
    sigma = 0.2 + 0.8 * (0.5 + 0.5 * theta)
    t0 = np.log(0.6) - 0.5 * ((z0 - 1) ** 2 + (z1 + 1) ** 2) / 4.0 - 2 * np.log(2.0) - np.log(2 * np.pi)
    t1 = np.log(0.4) - 0.5 * ((z0 + 1) ** 2 + (z1 - 1) ** 2) / sigma ** 2 - 2 * np.log(sigma) - np.log(2 * np.pi)
    return np.logaddexp(t0, t1) - 0.5 * np.log1p(g0 * g0 + g1 * g1)


def circle_distance(x):
    """| |x| - 1 |: circle_distance."""
    x = np.asarray(x, float)
    return np.abs(np.hypot(x[:, 0], x[:, 1]) - 1.0)


# ---------------------------------------------------------------------------------------------------------------
# Posteriors on a grid and the squared MMD (the conventions of the reference's evaluation/mmd.py)
# ---------------------------------------------------------------------------------------------------------------
def grid_posterior(theta, log_likelihood):
    """The probabilities of the grid points: the trapezoid rule's weights of prior x likelihood (uniform prior on
    the grid's interval), normalized. -inf contributes 0; NaN or no finite value raises Failed."""
    L = np.asarray(log_likelihood, float).ravel()
    if np.isnan(L).any():
        raise Failed(f"log-likelihood is NaN at theta = {theta[np.isnan(L)][:5]}")
    if not np.isfinite(L).any() or np.isposinf(L).any():
        raise Failed("log-likelihood has no finite value on the grid (or +inf)")
    c = np.ones_like(L)
    c[0] = c[-1] = 0.5
    p = c * np.exp(L - L[np.isfinite(L)].max())
    return p / p.sum()


def mean_sd(theta, p):
    m = float(np.sum(p * theta))
    return m, float(np.sqrt(max(np.sum(p * (theta - m) ** 2), 0.0)))


def median_pair_distance(theta, p):
    """The median of |Y - Y'| for Y, Y' independent draws from the posterior whose grid probabilities are p (the
    reference's scale='ys': the median pairwise distance of the true posterior's samples). On the uniform grid
    |Y - Y'| = k h with the probability W_k of the pairs of points k apart; as for a continuous density, W_k is
    spread evenly over [(k - 1/2) h, (k + 1/2) h] (W_0 over [0, h/2]) and the median interpolated in it (no jumps
    by whole grid steps; it converges to the continuous posterior's as h -> 0)."""
    theta, p = np.asarray(theta, float), np.asarray(p, float)
    h = (theta[-1] - theta[0]) / (len(theta) - 1)
    W = np.array([np.dot(p, p)] + [2 * np.dot(p[:-k], p[k:]) for k in range(1, len(p))])
    C = np.cumsum(W) / W.sum()
    k = int(np.searchsorted(C, 0.5))  # the bin of W[k] holds the median
    below = C[k - 1] if k else 0.0
    lo, width = (0.0, 0.5 * h) if k == 0 else ((k - 0.5) * h, h)
    return float(lo + (0.5 - below) / (C[k] - below) * width)


def mmd2_grid(theta, p, q, scale):
    """Squared MMD between two distributions on the same points, exactly: (p - q)^T K (p - q),
    K = exp(-|t - t'|^2 / (2 scale^2)) (what the reference's estimator estimates from samples)."""
    r = np.asarray(p, float) - np.asarray(q, float)
    K = np.exp(-0.5 * ((theta[:, None] - theta[None, :]) / scale) ** 2)
    return float(r @ K @ r)


def mmd2_samples(xs, ys, scale):
    """The reference's finite-sample estimate (unbiased; Gaussian kernel; unweighted): mean k over distinct pairs
    within xs plus within ys minus twice the mean over pairs across."""
    xs = np.asarray(xs, float).reshape(len(xs), -1)
    ys = np.asarray(ys, float).reshape(len(ys), -1)
    c = -0.5 / scale ** 2

    def mean_k(a, b, same):
        total = 0.0
        for i in range(0, len(a), 1000):
            d2 = np.sum((a[i:i + 1000, None, :] - b[None, :, :]) ** 2, axis=2)
            total += np.exp(c * d2).sum()
        if same:
            total -= len(a)  # the diagonal, k = 1
            return total / (len(a) * (len(a) - 1))
        return total / (len(a) * len(b))

    return mean_k(xs, xs, True) + mean_k(ys, ys, True) - 2 * mean_k(xs, ys, False)


def draw_from_grid(theta, p, n, rng):
    """n iid draws from the piecewise-linear density through the grid values (for tests)."""
    dens = p / np.where((np.arange(len(p)) == 0) | (np.arange(len(p)) == len(p) - 1), 0.5, 1.0)
    cell = 0.5 * (dens[:-1] + dens[1:]) * np.diff(theta)
    k = rng.choice(len(cell), size=n, p=cell / cell.sum())
    u = rng.random(n)
    a, b, h = dens[k], dens[k + 1], theta[k + 1] - theta[k]
    # inverse CDF of the linear density a + (b - a) s on [0, 1]
    s = np.where(np.abs(b - a) < 1e-12 * (a + b), u,
                 (np.sqrt(np.maximum(a * a + (b * b - a * a) * u, 0)) - a) / np.where(b == a, 1, b - a))
    return theta[k] + s * h


# ---------------------------------------------------------------------------------------------------------------
# The study
# ---------------------------------------------------------------------------------------------------------------
class Study:
    def __init__(self, args):
        self.a = args
        self.root = os.path.abspath(args.results)
        self.lode = os.path.abspath(args.lode)
        self.version = lode_version(self.lode)
        self.env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self.helps = {}
        self.shared = {}  # the shared inputs done in this run (a dry run records nothing on disk)

    def log(self, msg):
        print(f"[{datetime.datetime.utcnow():%H:%M:%S}] {msg}", flush=True)

    def run(self, cmd, log_path, ok=(0,)):
        """Runs cmd, its stdout+stderr appended to log_path; returns (output, wall s, CPU s = user + sys of the
        child). An exit status not in ok raises Failed with the command and its last lines."""
        line = " ".join(shlex.quote(c) for c in cmd)
        if self.a.dry_run:
            print("  " + line)
            return "", 0.0, 0.0
        with open(os.path.join(self.root, "commands.log"), "a") as f:
            f.write(f"{datetime.datetime.utcnow():%Y-%m-%dT%H:%M:%SZ}  [{self.version}]  {line}\n")
        t0 = time.monotonic()
        with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as out:
            try:
                p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env)
            except OSError as e:
                raise Failed(f"{e}: {line}")
            _, status, usage = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            text = out.read()
        seconds = time.monotonic() - t0
        cpu = usage.ru_utime + usage.ru_stime
        with open(log_path, "a") as f:
            f.write(f"$ {line}\n{text}(exit {p.returncode}, {seconds:.1f} s, CPU {cpu:.1f} s)\n")
        if p.returncode not in ok:
            tail = "\n".join(text.strip().splitlines()[-4:])
            raise Failed(f"exit {p.returncode}: {line}\n{tail}")
        return text, seconds, cpu

    def has_option(self, command, option):
        """Whether `lode COMMAND --help` lists OPTION (the manifold commands' options may still change)."""
        if command not in self.helps:
            p = subprocess.run([self.lode] + command.split() + ["--help"], capture_output=True, text=True)
            self.helps[command] = p.stdout + p.stderr
        return option in self.helps[command]

    def threads(self, command):
        return ["--threads", "1"] if self.has_option(command, "--threads") else []

    # -- stages: a finished stage leaves its STAGE.json; without it the stage is redone --------------------------
    @staticmethod
    def record(d, stage):
        p = os.path.join(d, f"{stage}.json")
        if os.path.exists(p):
            with open(p) as f:
                return json.load(f)
        return None

    def finish(self, d, stage, info):
        if self.a.dry_run:
            return info
        info = dict(info, lode_version=self.version, finished=f"{datetime.datetime.utcnow():%Y-%m-%dT%H:%M:%SZ}")
        tmp = os.path.join(d, f"{stage}.json.tmp")
        with open(tmp, "w") as f:
            json.dump(info, f, indent=1)
        os.replace(tmp, os.path.join(d, f"{stage}.json"))
        return info

    def fresh(self, path):
        if self.a.dry_run:
            return
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)

    def mkdir(self, d):
        if not self.a.dry_run:
            os.makedirs(d, exist_ok=True)

    # -- shared inputs ---------------------------------------------------------------------------------------------
    def train_data(self, model=MODEL, n=None, seed=TRAIN_SEED, name="train"):
        d = os.path.join(self.root, "data", name)
        n = n or self.a.n_train
        info = self.record(d, "data")
        if info and info["n"] != n:
            raise Failed(f"{d} holds {info['n']} events, not {n}: use another results directory (or remove it)")
        if info or d in self.shared:
            return os.path.join(d, "data")
        self.shared[d] = True
        self.log(f"mining {n} training events of {model} (theta ~ prior)")
        self.fresh(d)
        self.mkdir(d)
        _, seconds, _ = self.run([self.lode, "mine", model, "--for", "density", "--theta", "prior", "-n", str(n),
                                  "--seed", str(seed), "--threads", "1", "--out", os.path.join(d, "data")],
                                 os.path.join(d, "log.txt"))
        self.finish(d, "data", {"model": model, "n": n, "seed": seed, "seconds": seconds})
        return os.path.join(d, "data")

    def test_data(self):
        """The test events at theta = 0 (x.npy) and the observations (their first 20 rows, obs.npy)."""
        d = os.path.join(self.root, "data", "test")
        info = self.record(d, "data")
        if info and info["n"] != self.a.n_test:
            raise Failed(f"{d} holds {info['n']} events, not {self.a.n_test}: use another results directory")
        if info or d in self.shared:
            return d
        self.shared[d] = True
        self.log(f"simulating {self.a.n_test} test events at theta = {THETA_TEST:g}")
        self.fresh(d)
        self.mkdir(d)
        self.run([self.lode, "simulate", MODEL, "--theta", f"{THETA_TEST:g}", "-n", str(self.a.n_test), "--seed",
                  str(TEST_SEED), "--out", os.path.join(d, "x.npy")], os.path.join(d, "log.txt"))
        if not self.a.dry_run:
            x = np.load(os.path.join(d, "x.npy"))
            np.save(os.path.join(d, "obs.npy"), x[:N_OBS])
            dist = ps_distance(x)
            if dist.max() > 1e-9:  # the numpy manifold must be lode's
                raise Failed(f"exact simulations are {dist.max():.3g} from the numpy manifold (expected < 1e-9): "
                             "ps_height/PS_ROT in this script no longer match models/polynomial_surface.cpp")
        self.finish(d, "data", {"n": self.a.n_test, "seed": TEST_SEED, "theta": THETA_TEST, "observations": N_OBS})
        return d

    def grid(self):
        return np.linspace(-1.0, 1.0, self.a.grid)

    def grid_spec(self):
        return f"-1..1:{self.a.grid}"

    def truth(self):
        """The exact posterior of the observations on the grid: lode infer --exact (checked against numpy)."""
        d = os.path.join(self.root, "truth", f"grid{self.a.grid}")
        info = self.record(d, "posterior")
        if info or d in self.shared:
            return d, info or self.shared[d]
        self.shared[d] = {}
        obs = os.path.join(self.test_data(), "obs.npy")
        self.log(f"exact posterior of the {N_OBS} observations on {self.a.grid} grid points")
        self.fresh(d)
        self.mkdir(d)
        out = os.path.join(d, "infer.json")
        self.run([self.lode, "infer", "--exact", MODEL, "--observed", obs, "--grid", self.grid_spec(), "--json",
                  "--out", out], os.path.join(d, "log.txt"))
        if self.a.dry_run:
            return d, {}
        theta = self.grid()
        L = infer_log_likelihood(out, theta)
        x = np.load(obs)
        L_np = np.array([ps_log_likelihood(x, t).sum() for t in theta])
        diff = float(np.max(np.abs(L - L_np)))
        if diff > 1e-8:
            raise Failed(f"lode's exact log-likelihood differs from this script's by {diff:.3g} (expected < 1e-8)")
        p = grid_posterior(theta, L)
        np.save(os.path.join(d, "log_likelihood.npy"), L)
        np.save(os.path.join(d, "posterior.npy"), p)
        m, sd = mean_sd(theta, p)
        scale = median_pair_distance(theta, p)
        return d, self.finish(d, "posterior", {"mean": m, "sd": sd, "scale": scale, "grid": self.grid_spec(),
                                                "max_abs_diff_numpy": diff})

    # -- a cell ------------------------------------------------------------------------------------------------------
    def cell(self, alg, seed):
        d = os.path.join(self.root, "cells", f"{alg}-seed{seed}")
        done = self.record(d, "done")
        if done:
            if done.get("grid", self.grid_spec()) != self.grid_spec():
                self.log(f"{alg} seed {seed}: its posterior is on the grid {done['grid']}, not {self.grid_spec()}: "
                         f"remove {d}/posterior.json and done.json to redo it")
            return
        failed = os.path.join(d, "FAILED")
        if os.path.exists(failed):
            if not self.a.retry_failed:
                with open(failed) as f:
                    self.log(f"{alg} seed {seed}: failed before, skipped (--retry-failed): {f.readline().strip()}")
                return
            os.remove(failed)
        self.mkdir(d)
        log = os.path.join(d, "log.txt")
        try:
            self.cell_stages(alg, seed, d, log)
        except (Failed, OSError, ValueError, KeyError) as e:  # unreadable or malformed outputs fail the cell too
            if not self.a.dry_run:
                with open(failed, "w") as f:
                    f.write(str(e) + "\n")
                with open(log, "a") as f:
                    f.write(f"FAILED: {e}\n")
                append_csv(self.root, {"algorithm": alg, "seed": seed, "notes": "FAILED: " + str(e).splitlines()[0][:200],
                                       "lode_version": self.version})
            self.log(f"{alg} seed {seed}: FAILED: {e}")

    def cell_stages(self, alg, seed, d, log):
        test = self.test_data()
        truth_dir, truth = self.truth()
        model = os.path.join(d, "model")
        notes = []

        # 1. training
        tr = self.record(d, "train")
        if alg == TRUTH:
            tr = tr or self.finish(d, "train", {"cpu_s": 0.0, "wall_s": 0.0, "command": ""})
        elif not tr:
            kind, schedule = ALGORITHMS[alg]
            cmd = [self.lode, "train", kind, "--data", self.train_data(), "--out", model, "--seed", str(seed)]
            if kind != "af":
                cmd += ["--latent-dim", "2"]
            if schedule:
                cmd += ["--schedule", schedule]
            if self.a.epochs:
                cmd += ["--epochs", str(self.a.epochs)]
            cmd += self.threads("train " + kind) + shlex.split(self.a.train_args)
            self.log(f"{alg} seed {seed}: training")
            self.fresh(model)
            text, wall, cpu = self.run(cmd, log)
            tail = [w for w in text.strip().splitlines() if w.startswith("lode train")][-3:]
            tr = self.finish(d, "train", {"cpu_s": cpu, "wall_s": wall, "command": " ".join(map(shlex.quote, cmd)),
                                          "summary": tail})
            self.log(f"{alg} seed {seed}: trained in {wall:.0f} s (CPU {cpu:.0f} s)")

        # 2. generated samples at theta = 0 and their distance from the true manifold
        samples = os.path.join(d, "samples.npy")
        gen = self.record(d, "sample")
        if not gen:
            self.fresh(samples)
            if alg == TRUTH:
                cmd = [self.lode, "simulate", MODEL, "--theta", f"{THETA_TEST:g}", "-n", str(self.a.n_generate),
                       "--seed", str(5000 + seed), "--out", samples]
            else:
                cmd = [self.lode, "sample", "--model", model, "--theta", f"{THETA_TEST:g}", "-n",
                       str(self.a.n_generate), "--out", samples, "--seed", str(seed)] + self.threads("sample")
            self.run(cmd, log)
            gen = {"command": " ".join(map(shlex.quote, cmd))}
            if not self.a.dry_run:
                x = np.load(samples)
                if x.shape != (self.a.n_generate, 3):
                    raise Failed(f"{samples}: shape {x.shape}, expected ({self.a.n_generate}, 3)")
                dist = ps_distance(x)
                bad = int((~np.isfinite(dist)).sum())
                if bad:
                    raise Failed(f"{samples}: {bad} of {len(x)} generated samples are not finite")
                gen.update(distance=float(dist.mean()), distance_median=float(np.median(dist)),
                           distance_p90=float(np.quantile(dist, 0.9)), distance_max=float(dist.max()))
            gen = self.finish(d, "sample", gen)

        # 3. reconstruction error on the test data (af: none; truth: x' = x)
        rec = self.record(d, "reconstruct")
        if not rec:
            if alg in (TRUTH, "af"):
                rec = self.finish(d, "reconstruct", {"reconstruction": None})
            else:
                xr = os.path.join(d, "reconstructed.npy")
                self.fresh(xr)
                cmd = [self.lode, "evaluate", "--model", model, "--x", os.path.join(test, "x.npy"), "--reconstruct",
                       "--out", xr] + self.threads("evaluate")
                self.run(cmd, log)
                rec = {"command": " ".join(map(shlex.quote, cmd))}
                if not self.a.dry_run:
                    x, x1 = np.load(os.path.join(test, "x.npy")), np.load(xr)
                    if x1.shape != x.shape:
                        raise Failed(f"{xr}: shape {x1.shape}, expected {x.shape}")
                    err = np.linalg.norm(x - x1, axis=1)
                    if not np.isfinite(err).all():
                        raise Failed(f"{xr}: {int((~np.isfinite(err)).sum())} reconstructed rows are not finite")
                    rec.update(reconstruction=float(err.mean()), reconstruction_median=float(np.median(err)),
                               reconstructed_distance=float(ps_distance(x1).mean()))
                rec = self.finish(d, "reconstruct", rec)

        # 4. the posterior on the grid and its squared MMD to the exact one
        post = self.record(d, "posterior")
        if not post:
            theta = self.grid()
            obs = os.path.join(test, "obs.npy")
            if alg == TRUTH:
                L, via = (None if self.a.dry_run else np.load(os.path.join(truth_dir, "log_likelihood.npy"))), "exact"
            else:
                L, via = self.model_log_likelihood(model, obs, theta, d, log)
            post = {"via": via, "grid": self.grid_spec()}
            if not self.a.dry_run:
                if np.isneginf(L).any():
                    post["notes"] = f"log p = -inf at {int(np.isneginf(L).sum())} of {len(L)} grid points"
                p_true = np.load(os.path.join(truth_dir, "posterior.npy"))
                q = grid_posterior(theta, L)
                np.save(os.path.join(d, "log_likelihood.npy"), L)
                np.save(os.path.join(d, "posterior.npy"), q)
                m, sd = mean_sd(theta, q)
                post.update(mmd2=mmd2_grid(theta, q, p_true, truth["scale"]), mean=m, sd=sd, scale=truth["scale"])
            post = self.finish(d, "posterior", post)

        if self.a.dry_run:
            return
        row = {"algorithm": alg, "seed": seed, "distance": f"{gen['distance']:.6g}",
               "distance_median": f"{gen['distance_median']:.6g}",
               "reconstruction": "" if rec.get("reconstruction") is None else f"{rec['reconstruction']:.6g}",
               "mmd2": f"{post['mmd2']:.6g}", "post_mean": f"{post['mean']:.5f}", "post_sd": f"{post['sd']:.5f}",
               "train_cpu_s": f"{tr['cpu_s']:.1f}", "train_wall_s": f"{tr['wall_s']:.1f}",
               "posterior_via": post["via"], "notes": "; ".join(notes + [post.get("notes", "")]).strip("; "),
               "lode_version": self.version}
        self.finish(d, "done", dict(row, grid=post.get("grid", self.grid_spec())))
        append_csv(self.root, row)
        self.log(f"{alg} seed {seed}: distance {gen['distance']:.4g}, reconstruction {row['reconstruction'] or '-'}, "
                 f"MMD^2 {post['mmd2']:.4g}, posterior {post['mean']:.3f} +- {post['sd']:.3f} "
                 f"(exact {truth['mean']:.3f} +- {truth['sd']:.3f})")

    def model_log_likelihood(self, model, obs, theta, d, log):
        """sum_i log p(x_i|theta) of the model on the grid: one `lode infer --model` if it takes the estimator,
        else one `lode evaluate --model --theta0` per grid point (the fallback is logged)."""
        out = os.path.join(d, "infer.json")
        cmd = [self.lode, "infer", "--model", model, "--observed", obs, "--grid", self.grid_spec(), "--json",
               "--out", out] + self.threads("infer")
        try:
            self.run(cmd, log)
            if self.a.dry_run:
                return None, "lode infer"
            with open(out) as f:
                quantity = json.load(f).get("quantity", "")
            if "log p" not in quantity:  # a ratio's L differs by a constant: fine for the posterior, noted
                self.log(f"{model}: lode infer's quantity is '{quantity}'")
            return infer_log_likelihood(out, theta), "lode infer"
        except Failed as e:
            why = [w for w in str(e).splitlines() if "error" in w] or str(e).splitlines()[-1:]
            self.log(f"{model}: lode infer --model refused it ({why[0][:160]}); "
                     f"{len(theta)} calls of lode evaluate instead")
        tmp = os.path.join(d, "lp.npy")
        L = np.zeros(len(theta))
        for k, t in enumerate(theta):
            self.fresh(tmp)
            # exit 1 with the file written: some values are not finite (judged below: -inf counts as density 0)
            self.run([self.lode, "evaluate", "--model", model, "--x", obs, f"--theta0={t:.17g}", "--out", tmp]
                     + self.threads("evaluate"), log, ok=(0, 1))
            if not self.a.dry_run:
                if not os.path.exists(tmp):
                    raise Failed(f"lode evaluate at theta = {t:.6g} failed (exit 1, no output; see {log})")
                lp = np.load(tmp)
                if lp.shape != (N_OBS, 1):
                    raise Failed(f"lode evaluate gave shape {lp.shape}, expected ({N_OBS}, 1)")
                L[k] = lp.sum()
        return L, "lode evaluate per grid point"

    # -- the circle (pictures only) ------------------------------------------------------------------------------
    def circle(self):
        try:
            data = self.train_data("circle", self.a.circle_n, CIRCLE_SEED, "circle-train")
        except Failed as e:
            self.log(f"circle training data FAILED: {e}")
            return
        for alg in self.a.algorithms:
            if alg == TRUTH:
                continue
            d = os.path.join(self.root, "circle", alg)
            if self.record(d, "done"):
                continue
            self.mkdir(d)
            log = os.path.join(d, "log.txt")
            kind, schedule = ALGORITHMS[alg]
            model = os.path.join(d, "model")
            cmd = [self.lode, "train", kind, "--data", data, "--out", model, "--seed", "1"]
            if kind != "af":
                cmd += ["--latent-dim", "1"]
            if schedule:
                cmd += ["--schedule", schedule]
            if self.a.circle_epochs:
                cmd += ["--epochs", str(self.a.circle_epochs)]
            cmd += self.threads("train " + kind) + shlex.split(self.a.train_args)
            samples = os.path.join(d, "samples.npy")
            try:
                self.fresh(model)
                self.log(f"circle {alg}: training")
                _, wall, cpu = self.run(cmd, log)
                self.run([self.lode, "sample", "--model", model, "--theta", "0", "-n", "2000", "--out", samples,
                          "--seed", "1"] + self.threads("sample"), log)
                info = {"command": " ".join(map(shlex.quote, cmd)), "wall_s": wall, "cpu_s": cpu}
                if not self.a.dry_run:
                    dist = circle_distance(np.load(samples))
                    info.update(distance=float(dist.mean()), distance_median=float(np.median(dist)))
                    self.log(f"circle {alg}: mean distance {info['distance']:.4g} (trained in {wall:.0f} s)")
                self.finish(d, "done", info)
            except (Failed, OSError, ValueError) as e:
                self.log(f"circle {alg}: FAILED: {e}")
                if not self.a.dry_run:
                    with open(log, "a") as f:
                        f.write(f"FAILED: {e}\n")

    def study(self):
        with open(os.devnull if self.a.dry_run else os.path.join(self.root, "runs.log"), "a") as f:
            f.write(f"{datetime.datetime.utcnow():%Y-%m-%dT%H:%M:%SZ}  lode {self.version} ({self.lode})  "
                    f"{' '.join(map(shlex.quote, sys.argv))}\n")
        try:
            self.test_data()
            self.truth()
            if any(a != TRUTH for a in self.a.algorithms):
                self.train_data()
        except Failed as e:
            self.log(f"shared inputs FAILED: {e}")
            return
        for seed in self.a.seeds:  # seed-major: a partial run has every algorithm at the first seeds
            for alg in self.a.algorithms:
                self.cell(alg, seed)


def infer_log_likelihood(path, theta):
    """L on the grid from lode infer's JSON, checking that its grid is ours."""
    with open(path) as f:
        j = json.load(f)
    grid = np.array(j["grid"], float).ravel()
    if grid.shape != theta.shape or np.max(np.abs(grid - theta)) > 1e-12:
        raise Failed(f"{path}: the grid ({len(grid)} points) is not the study's ({len(theta)} points on [-1, 1])")
    return np.array([np.nan if v is None else v for v in j["log_likelihood"]], float)


def append_csv(root, row):
    path = os.path.join(root, "results.csv")
    new = not os.path.exists(path)
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        if new:
            w.writeheader()
        w.writerow(row)


def lode_version(lode):
    """'lode --version', git describe of the checkout the executable sits in (REPO when it is not in one) and the
    sha256 prefix of the executable and lode's libraries beside it."""
    try:
        v = subprocess.run([lode, "--version"], capture_output=True, text=True).stdout.strip().replace("lode ", "")
    except OSError:
        v = "?"
    d = os.path.dirname(lode)
    where = d if subprocess.run(["git", "-C", d, "rev-parse"], capture_output=True).returncode == 0 else REPO
    try:
        g = subprocess.run(["git", "-C", where, "describe", "--always", "--dirty", "--tags"], capture_output=True,
                           text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        g = "unknown"
    try:
        sha = hashlib.sha256()
        lib = os.path.join(d, os.pardir, "lib")
        libs = sorted(os.path.join(lib, n) for n in os.listdir(lib) if n.startswith("liblode")) \
            if os.path.isdir(lib) else []
        for path in [lode] + [p for p in libs if not os.path.islink(p)]:
            with open(path, "rb") as f:
                sha.update(f.read())
        h = sha.hexdigest()[:12]
    except OSError:
        h = "?"
    return f"{v} {g} sha256:{h}"


# ---------------------------------------------------------------------------------------------------------------
# The summary
# ---------------------------------------------------------------------------------------------------------------
def finished_cells(root):
    """{algorithm: [done.json of each finished seed]} and {algorithm: number of FAILED cells}."""
    done, failed = {}, {}
    base = os.path.join(root, "cells")
    for name in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        alg = name.rsplit("-seed", 1)[0]
        info = Study.record(os.path.join(base, name), "done")
        if info:
            done.setdefault(alg, []).append(info)
        elif os.path.exists(os.path.join(base, name, "FAILED")):
            failed[alg] = failed.get(alg, 0) + 1
    return done, failed


def med(rows, key):
    v = [float(r[key]) for r in rows if r.get(key) not in (None, "")]
    return (float(np.median(v)), v) if v else (None, [])


def fmt3(v):
    """The reference's 3 decimals."""
    return "–" if v is None else f"{v:.3f}"


def fmtv(v):
    """lode's values: one digit more than the reference's (to compare with its 3 decimals), tiny ones as e-notation."""
    if v is None:
        return "–"
    return f"{v:.4f}" if abs(v) >= 0.00005 or v == 0 else f"{v:.1e}"


def summary(root):
    done, failed = finished_cells(root)
    truth = None
    for name in sorted(os.listdir(os.path.join(root, "truth"))) if os.path.isdir(os.path.join(root, "truth")) else []:
        truth = Study.record(os.path.join(root, "truth", name), "posterior") or truth
    lines = ["| algorithm | seeds | distance | reconstruction | posterior MMD² | posterior mean ± sd | train CPU s |",
             "|---|---|---|---|---|---|---|"]
    order = [TRUTH] + list(ALGORITHMS)
    for alg in order + sorted(set(done) - set(order)):
        rows = done.get(alg, [])
        if not rows and not failed.get(alg):
            continue
        ref = REFERENCE.get(alg, (None, None, None))
        cells = []
        for i, key in enumerate(["distance", "reconstruction", "mmd2"]):
            m, v = med(rows, key)
            mark = ""
            if alg in MANIFOLD_LEARNERS and m is not None and ref[i] is not None and m > ref[i]:
                mark = " ✗"
            text = f"**{fmtv(m)}**{mark}" if m is not None else "–"
            if ref[i] is not None or alg in REFERENCE:
                text += f" ({fmt3(ref[i])})"
            cells.append(text)
        pm, _ = med(rows, "post_mean")
        ps, _ = med(rows, "post_sd")
        cpu, _ = med(rows, "train_cpu_s")
        n = f"{len(rows)}" + (f" (+{failed[alg]} failed)" if failed.get(alg) else "")
        post = "–" if pm is None else f"{pm:.3f} ± {ps:.3f}"
        lines.append(f"| {LABEL.get(alg, alg)} | {n} | " + " | ".join(cells) + f" | {post} | "
                     f"{'–' if cpu is None else f'{cpu:.0f}'} |")
    lines += ["", "Medians over the finished seeds; in parentheses the reference code's published median over 5 runs "
              "(issue 16). ✗: an M-flow or Mₑ-flow median above the reference's. Distance: mean |offset| of 10,000 "
              "generated samples at θ = 0 from the true surface; reconstruction: mean ‖x − x′‖ over the test data; "
              "MMD²: squared MMD between the model's and the exact posterior of 20 observations on the grid "
              "(docs/mflow-study.md); posterior mean ± sd: medians of the grid posterior's."]
    mmd = {a: med(done.get(a, []), "mmd2")[0] for a in ALGORITHMS}
    present = [a for a in ("af", "pie") if mmd[a] is not None]
    if present:
        best = min(mmd[a] for a in present)
        verdict = [f"{LABEL[a]} {'yes' if mmd[a] < best else 'no'}" for a in sorted(MANIFOLD_LEARNERS)
                   if mmd[a] is not None]
        if verdict:
            lines.append(f"Posterior MMD² median below {' and '.join(LABEL[a] + chr(39) + 's' for a in present)} "
                         f"(the issue's bar{'' if len(present) == 2 else '; the other baseline is not done'}): "
                         + "; ".join(verdict) + ".")
    if truth:
        lines.append(f"Exact posterior: {truth['mean']:.3f} ± {truth['sd']:.3f} (grid {truth['grid']}, MMD kernel "
                     f"scale {truth['scale']:.4f}).")
    per_seed = ["", "| algorithm | seed | distance | reconstruction | MMD² | posterior mean ± sd | train CPU s | via |",
                "|---|---|---|---|---|---|---|---|"]
    for alg in order + sorted(set(done) - set(order)):
        for r in sorted(done.get(alg, []), key=lambda r: int(r["seed"])):
            rec = r.get("reconstruction") or ""
            per_seed.append(f"| {alg} | {r['seed']} | {fmtv(float(r['distance']))} | "
                            f"{fmtv(float(rec)) if rec else '–'} | {fmtv(float(r['mmd2']))} | "
                            f"{float(r['post_mean']):.3f} ± {float(r['post_sd']):.3f} | {float(r['train_cpu_s']):.0f} | "
                            f"{r['posterior_via']} |")
    return "\n".join(lines + (per_seed if len(per_seed) > 3 else []))


# ---------------------------------------------------------------------------------------------------------------
# Pictures (gnuplot)
# ---------------------------------------------------------------------------------------------------------------
def gnuplot(script, workdir):
    path = os.path.join(workdir, "plot.gp")
    with open(path, "w") as f:
        f.write(script)
    p = subprocess.run(["gnuplot", path], capture_output=True, text=True)
    if p.returncode != 0:
        raise Failed(f"gnuplot failed ({path}):\n{p.stderr.strip()[-2000:]}")


def write_rows(path, rows, blank_every=None):
    with open(path, "w") as f:
        for k, r in enumerate(rows):
            if blank_every and k and k % blank_every == 0:
                f.write("\n")
            f.write(" ".join(f"{v:.9g}" for v in r) + "\n")


def plot_seed(root, algs, wanted):
    """The seed to picture: --plot-seed, else the first seed finished by every algorithm (else by most)."""
    done, _ = finished_cells(root)
    seeds = {a: {int(r["seed"]) for r in done.get(a, [])} for a in algs}
    if wanted is not None:
        return wanted
    common = set.intersection(*seeds.values()) if seeds else set()
    if common:
        return min(common)
    allseeds = sorted(set().union(*seeds.values())) if seeds else []
    return max(allseeds, key=lambda s: sum(s in v for v in seeds.values())) if allseeds else None


def plot_surface(root, images, algs, seed, work):
    panels = []
    for alg in algs:
        path = os.path.join(root, "cells", f"{alg}-seed{seed}", "samples.npy")
        if os.path.exists(path):
            panels.append((alg, np.load(path)))
    if not panels:
        raise Failed(f"no generated samples of seed {seed} under {root}/cells (run the study first)")
    # The true surface as a mesh over the chart [-4, 4]^2 (where nearly all the mass is).
    g = np.linspace(-4, 4, 25)
    Z0, Z1 = np.meshgrid(g, g, indexing="ij")
    mesh = ps_embed(Z0.ravel(), Z1.ravel())
    write_rows(os.path.join(work, "mesh.dat"), mesh, blank_every=len(g))
    rng = np.random.default_rng(0)
    n = len(panels)
    script = [f"set terminal pngcairo size {420 * n},{860} font 'Sans,10'",
              f"set output '{os.path.join(images, 'mflow-polynomial-surface.png')}'",
              f"set multiplot title \"Generated samples at θ = 0 against the true polynomial surface (grey mesh), seed {seed}: "
              f"3,000 samples shown above, all below; colour: log_{{10}} of the distance from the surface\" "
              f"font 'Sans,12'"]
    for k, (alg, x) in enumerate(panels):
        x = x[np.all(np.isfinite(x), axis=1)]
        dist = ps_distance(x)
        sub = x[rng.permutation(len(x))[:3000]]
        ld = np.log10(np.maximum(ps_distance(sub), 1e-12))
        write_rows(os.path.join(work, f"s{k}.dat"), np.column_stack([sub, ld]))
        w = ps_unrotate(x)
        ldall = np.log10(np.maximum(dist, 1e-12))
        write_rows(os.path.join(work, f"d{k}.dat"), np.column_stack([w[:, 0], ldall]))
        title = f"{LABEL.get(alg, alg)}\\nmean distance {dist.mean():.3g}"
        script += [
            "reset", "set palette defined (0 '#2166ac', 1 '#67a9cf', 2 '#bbbbbb', 3 '#ef8a62', 4 '#b2182b')",
            "set cbrange [-4:0]", f"set origin {k / n},0.45", f"set size {1 / n},0.52", "unset key",
            f"set title \"{title}\"", "set view 60,30", "set xrange [-5:5]", "set yrange [-5:5]", "set zrange [-4:3]",
            "set xlabel 'x_1'", "set ylabel 'x_2'", "set zlabel 'x_3' rotate", "set ticslevel 0", "unset colorbox",
            "set xtics 2", "set ytics 2", "set ztics 2",
            f"splot '{work}/mesh.dat' using 1:2:3 with lines linecolor rgb '#999999' linewidth 0.5 notitle, "
            f"'{work}/s{k}.dat' using 1:2:3:4 with points pointtype 7 pointsize 0.25 palette notitle",
            "reset", f"set origin {k / n},0.0", f"set size {1 / n},0.45",
            "set palette defined (0 '#2166ac', 1 '#67a9cf', 2 '#bbbbbb', 3 '#ef8a62', 4 '#b2182b')", "set cbrange [-4:0]",
            "set title 'distance from the true surface (all samples)'", "set xlabel 'chart coordinate z_0 (first component of R^T x)'",
            "set ylabel 'log_{10} distance'", "set xrange [-6:6]", "set yrange [-6:1]", "set grid", "set key below",
            "unset colorbox" if k < n - 1 else "set colorbox",
            f"plot '{work}/d{k}.dat' using 1:2:2 with points pointtype 7 pointsize 0.15 palette notitle, "
            f"{np.log10(dist.mean()):.6g} with lines dashtype 2 linecolor rgb 'black' title 'log_{{10}} mean'",
        ]
    script.append("unset multiplot")
    gnuplot("\n".join(script) + "\n", work)
    return [a for a, _ in panels]


def plot_posterior(root, images, algs, seed, work):
    theta_dir = os.path.join(root, "truth")
    truths = sorted(os.listdir(theta_dir)) if os.path.isdir(theta_dir) else []
    if not truths:
        return []
    p_true = np.load(os.path.join(theta_dir, truths[-1], "posterior.npy"))
    theta = np.linspace(-1, 1, len(p_true))
    # density = probability / (trapezoid weight x spacing): the end points carry half a cell
    h = (theta[1] - theta[0]) * np.where((theta == theta[0]) | (theta == theta[-1]), 0.5, 1.0)
    cols, names = [theta, p_true / h], []
    for alg in algs:
        path = os.path.join(root, "cells", f"{alg}-seed{seed}", "posterior.npy")
        if os.path.exists(path):
            q = np.load(path)
            if len(q) == len(p_true):
                cols.append(q / h)
                names.append(alg)
    write_rows(os.path.join(work, "post.dat"), np.column_stack(cols))
    colors = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02"]
    plots = [f"'{work}/post.dat' using 1:2 with lines linewidth 4 linecolor rgb '#000000' title 'exact'"]
    for k, alg in enumerate(names):
        plots.append(f"'' using 1:{k + 3} with lines linewidth 2 linecolor rgb '{colors[k % len(colors)]}' "
                     f"title '{LABEL.get(alg, alg)}'")
    script = ["set terminal pngcairo size 800,500 font 'Sans,10'",
              f"set output '{os.path.join(images, 'mflow-posterior.png')}'",
              f"set title 'posterior of θ from 20 observations at θ = 0 (uniform prior; seed {seed})'",
              "set xlabel 'θ'", "set ylabel 'density'", "set grid", "set key top left",
              "plot " + ", \\\n  ".join(plots)]
    gnuplot("\n".join(script) + "\n", work)
    return names


def plot_circle(root, images, algs, work):
    panels = []
    for alg in algs:
        path = os.path.join(root, "circle", alg, "samples.npy")
        if os.path.exists(path):
            panels.append((alg, np.load(path)))
    if not panels:
        return []
    n = len(panels)
    script = [f"set terminal pngcairo size {380 * n},{720} font 'Sans,10'",
              f"set output '{os.path.join(images, 'mflow-circle.png')}'",
              "set multiplot title \"The circle: samples at θ = 0 against the unit circle (top) and their radial offset "
              "|x| − 1 against the angle (bottom; offsets beyond ±0.01 drawn at the edge)\" font 'Sans,12'"]
    for k, (alg, x) in enumerate(panels):
        x = x[np.all(np.isfinite(x), axis=1)]
        off = np.hypot(x[:, 0], x[:, 1]) - 1.0
        write_rows(os.path.join(work, f"c{k}.dat"), np.column_stack([x, np.arctan2(x[:, 1], x[:, 0]),
                                                                    np.clip(off, -0.01, 0.01)]))
        d = np.abs(off)
        script += ["reset", f"set origin {k / n},0.38", f"set size {1 / n},0.57", "set size ratio -1",
                   f"set title \"{LABEL.get(alg, alg)}\\ndistance: mean {d.mean():.2g}, median {np.median(d):.2g}, "
                   f"max {d.max():.2g}\"",
                   "set xrange [-1.6:1.6]", "set yrange [-1.6:1.6]", "set grid", "set key below",
                   "set parametric", "set trange [-pi:pi]", "set samples 400",
                   f"plot cos(t), sin(t) with lines linewidth 2 linecolor rgb '#999999' title 'unit circle', "
                   f"'{work}/c{k}.dat' using 1:2 with points pointtype 7 pointsize 0.3 linecolor rgb '#1f4e9c' "
                   f"title 'samples (θ = 0)'",
                   "reset", f"set origin {k / n},0", f"set size {1 / n},0.38", "set grid",
                   "set xrange [-pi:pi]", "set yrange [-0.0105:0.0105]", "set xlabel 'angle atan2(x_2, x_1)'",
                   "set ylabel '|x| − 1'", "set ytics 0.005",
                   f"plot 0 with lines linewidth 2 linecolor rgb '#999999' notitle, "
                   f"'{work}/c{k}.dat' using 3:4 with points pointtype 7 pointsize 0.3 linecolor rgb '#1f4e9c' notitle"]
    script.append("unset multiplot")
    gnuplot("\n".join(script) + "\n", work)
    return [a for a, _ in panels]


def plot(root, images, algs, wanted_seed, circle_root):
    os.makedirs(images, exist_ok=True)
    algs = [a for a in algs if a != TRUTH]
    seed = plot_seed(root, algs, wanted_seed)
    with tempfile.TemporaryDirectory() as work:
        if seed is not None:
            shown = plot_surface(root, images, algs, seed, work)
            print(f"{images}/mflow-polynomial-surface.png: seed {seed}, {', '.join(shown)}")
            shown = plot_posterior(root, images, algs, seed, work)
            if shown:
                print(f"{images}/mflow-posterior.png: seed {seed}, {', '.join(shown)}")
        else:
            print(f"no finished cells under {root}/cells: no surface picture")
        shown = plot_circle(circle_root, images, algs, work)
        print(f"{images}/mflow-circle.png: {', '.join(shown)}" if shown else
              f"no circle samples under {circle_root}/circle (run --circle): no circle picture")


# ---------------------------------------------------------------------------------------------------------------
# Self-test: the metrics against hand values and lode's exact model (no training needed)
# ---------------------------------------------------------------------------------------------------------------
def self_test(lode):
    checks = []

    def check(name, ok, detail):
        checks.append(ok)
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")

    # The reference's MMD estimator on a hand-computed case: xs = {0, 1}, ys = {0, 2}, scale 1:
    # k(xs pair) = e^-1/2, k(ys pair) = e^-2, across: 1, e^-2, e^-1/2, e^-1/2 (mean of 4).
    e = np.exp
    hand = e(-0.5) + e(-2.0) - 2 * (1 + e(-2.0) + 2 * e(-0.5)) / 4
    v = mmd2_samples([0.0, 1.0], [0.0, 2.0], 1.0)
    check("MMD² estimator, hand value", abs(v - hand) < 1e-15, f"{v:.15g} vs {hand:.15g}")
    theta = np.linspace(-1, 1, 401)
    p = np.exp(-0.5 * ((theta - 0.1) / 0.2) ** 2)
    p /= p.sum()
    q = np.exp(-0.5 * ((theta + 0.05) / 0.25) ** 2)
    q /= q.sum()
    check("grid MMD² of a distribution with itself", mmd2_grid(theta, p, p, 0.3) == 0.0, "0")
    a, b = np.zeros(401), np.zeros(401)
    a[100], b[300] = 1, 1
    hand = 2 * (1 - np.exp(-0.5 * (theta[300] - theta[100]) ** 2 / 0.3 ** 2))
    v = mmd2_grid(theta, a, b, 0.3)
    check("grid MMD² of two point masses", abs(v - hand) < 1e-14, f"{v:.15g} vs 2(1 - k) = {hand:.15g}")
    # Gaussian p: the median of |Y - Y'| is sqrt(2) * 0.6745 * sd (sd 0.2, within the grid's resolution).
    s = median_pair_distance(theta, p)
    check("median pairwise distance of N(0.1, 0.2²)", abs(s - np.sqrt(2) * 0.67449 * 0.2) < 5e-4,
          f"{s:.4f} vs {np.sqrt(2) * 0.67449 * 0.2:.4f}")
    # The exact grid MMD² is what the sample estimator estimates: 4,000 draws each, MC sd ~ 1e-3 here.
    rng = np.random.default_rng(7)
    xs, ys = draw_from_grid(theta, p, 4000, rng), draw_from_grid(theta, q, 4000, rng)
    exact, est = mmd2_grid(theta, p, q, s), mmd2_samples(xs, ys, s)
    check("grid MMD² vs the sample estimate (4,000 draws each)", abs(exact - est) < 0.006,
          f"{exact:.4f} vs {est:.4f}")

    # The manifold: numpy against lode's model.
    with tempfile.TemporaryDirectory() as t:
        def lode_run(*args):
            r = subprocess.run([lode] + list(args), capture_output=True, text=True)
            if r.returncode:
                raise Failed(f"lode {' '.join(args)}: {r.stderr.strip()}")
        x_path = os.path.join(t, "x.npy")
        lode_run("simulate", MODEL, "--theta", "0.3", "-n", "2000", "--seed", "5", "--out", x_path)
        x = np.load(x_path)
        d = ps_distance(x)
        check("distance of lode's exact simulations", d.max() < 1e-12, f"max {d.max():.2e}")
        # Points moved by delta along the surface's normal axis R e3 are |delta| away (the definition).
        delta = np.linspace(-0.5, 0.5, len(x))
        moved = x + delta[:, None] * PS_ROT[:, 2][None, :]
        err = np.abs(ps_distance(moved) - np.abs(delta)).max()
        check("distance of points moved along R e3 by delta = |delta|", err < 1e-12, f"max error {err:.2e}")
        # Off the manifold, lode's exact likelihood is that of the chart point: it checks R^T and grad f.
        moved_path = os.path.join(t, "moved.npy")
        np.save(moved_path, moved + 0.3 * rng.standard_normal(moved.shape))
        for th in (-1.0, 0.0, 0.7):
            lp_path = os.path.join(t, "lp.npy")
            lode_run("evaluate", "--exact", MODEL, "--x", moved_path, f"--theta0={th}", "--out", lp_path)
            err = np.abs(np.load(lp_path)[:, 0] - ps_log_likelihood(np.load(moved_path), th)).max()
            check(f"exact log p(x|θ = {th:g}) off the manifold, numpy vs lode evaluate --exact", err < 1e-9,
                  f"max difference {err:.2e}")
        c_path = os.path.join(t, "c.npy")
        lode_run("simulate", "circle", "--theta", "0", "-n", "1000", "--seed", "5", "--out", c_path)
        d = circle_distance(np.load(c_path))
        check("circle distance of lode's exact simulations", d.max() < 1e-12, f"max {d.max():.2e}")
        # The exact posterior: lode infer --exact against numpy on the study's grid.
        obs = x[:N_OBS]
        np.save(os.path.join(t, "obs.npy"), obs)
        lode_run("infer", "--exact", MODEL, "--observed", os.path.join(t, "obs.npy"), "--grid", "-1..1:401", "--json",
                 "--out", os.path.join(t, "infer.json"))
        L = infer_log_likelihood(os.path.join(t, "infer.json"), theta)
        L_np = np.array([ps_log_likelihood(obs, th).sum() for th in theta])
        err = np.abs(L - L_np).max()
        check("Σ log p on the 401-point grid, lode infer --exact vs numpy", err < 1e-8, f"max difference {err:.2e}")
    print(f"{sum(checks)} of {len(checks)} checks passed")
    return all(checks)


# ---------------------------------------------------------------------------------------------------------------
def parse_seeds(text):
    out = []
    for w in text.split(","):
        w = w.strip()
        if "-" in w:
            a, b = w.split("-")
            out += list(range(int(a), int(b) + 1))
        elif w:
            out.append(int(w))
    if not out or any(s < 1 for s in out):
        sys.exit(f"mflow-study.py: --seeds '{text}': give seeds >= 1, e.g. 1-5 or 1,3")
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="?", help="results directory (outside the repository); created if missing "
                   "(not needed with --self-test)")
    p.add_argument("--algorithms", default=",".join(ALGORITHMS),
                   help=f"comma-separated, of {', '.join(ALGORITHMS)}, {TRUTH} (default: the five trained ones)")
    p.add_argument("--seeds", default="1-5", help="training seeds, e.g. 1-5 or 1,3 (default 1-5)")
    p.add_argument("--epochs", type=int, default=None, help="lode train --epochs (default: not passed, lode's)")
    p.add_argument("--train-args", default="", help="extra lode train options, e.g. '--batch 100'")
    p.add_argument("--n-train", type=int, default=100000, help="training events (default 100000)")
    p.add_argument("--n-test", type=int, default=10000, help="test events at theta = 0 (default 10000)")
    p.add_argument("--n-generate", type=int, default=10000, help="generated samples per cell (default 10000)")
    p.add_argument("--grid", type=int, default=401, help="posterior grid points on [-1, 1] (default 401)")
    p.add_argument("--lode", default=os.environ.get("LODE", os.path.join(REPO, "build", "tools", "lode")),
                   help="the lode executable (default: $LODE or build/tools/lode of this checkout)")
    p.add_argument("--retry-failed", action="store_true", help="redo cells that failed before (default: skip them)")
    p.add_argument("--nice", type=int, default=10, help="lower the priority by this much (default 10)")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    p.add_argument("--summary", action="store_true", help="only print the summary tables of what is finished")
    p.add_argument("--circle", action="store_true", help="instead of the study: train each algorithm on the circle "
                   "(latent dim 1) and draw samples at theta = 0, for --plot")
    p.add_argument("--circle-n", type=int, default=10000, help="circle training events (default 10000)")
    p.add_argument("--circle-epochs", type=int, default=None, help="--circle: lode train --epochs (default: lode's)")
    p.add_argument("--plot", action="store_true", help="only draw the PNGs from the finished cells")
    p.add_argument("--images", default=os.path.join(REPO, "docs", "images"), help="--plot: where (default docs/images)")
    p.add_argument("--circle-results", default=None,
                   help="--plot: the results directory of the --circle run (default: RESULTS_DIR)")
    p.add_argument("--plot-seed", type=int, default=None,
                   help="--plot: the seed pictured (default: the first one every algorithm finished)")
    p.add_argument("--self-test", action="store_true", help="check the metrics and the numpy manifold against lode")
    a = p.parse_args()

    a.algorithms = [w.strip() for w in a.algorithms.split(",") if w.strip()]
    for alg in a.algorithms:
        if alg not in ALGORITHMS and alg != TRUTH:
            sys.exit(f"mflow-study.py: --algorithms: '{alg}' is not one of {', '.join(ALGORITHMS)}, {TRUTH}")
    a.seeds = parse_seeds(a.seeds)
    if a.results is None and not a.self_test:
        p.error("the results directory is required (except with --self-test)")
    root = os.path.abspath(a.results or ".")
    if a.summary:
        print(summary(root))
        return
    if a.plot:
        try:
            plot(root, os.path.abspath(a.images), a.algorithms, a.plot_seed, os.path.abspath(a.circle_results or root))
        except Failed as e:
            sys.exit(f"mflow-study.py --plot: {e}")
        return
    if not os.access(a.lode, os.X_OK):
        sys.exit(f"mflow-study.py: no lode executable at '{a.lode}': build it (cmake --build build --target lode) "
                 f"or pass --lode PATH")
    if a.self_test:
        try:
            sys.exit(0 if self_test(os.path.abspath(a.lode)) else 1)
        except Failed as e:
            sys.exit(f"mflow-study.py --self-test: {e}")
    if os.path.commonpath([root, REPO]) == REPO:
        sys.exit(f"mflow-study.py: '{root}' is inside the repository; put the results elsewhere (e.g. /work/mflow-study)")
    os.makedirs(root, exist_ok=True)
    lock = open(os.path.join(root, ".lock"), "w")  # held until exit
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.exit(f"mflow-study.py: another driver is running on '{root}' (it holds {root}/.lock)")
    if a.nice:
        os.nice(a.nice)
    s = Study(a)
    s.log(f"lode {s.version}; results in {root}")
    if a.circle:
        s.circle()
        return
    s.study()
    print()
    print(summary(root))


if __name__ == "__main__":
    main()
