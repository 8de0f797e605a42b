#!/usr/bin/env python3
"""A lean PyTorch training loop for a ratio estimator: the yardstick of `lode train`'s speed.

Trains on the .npy arrays that `lode mine MODEL --for ratio` writes (x, theta0, theta1, y,
r_xz, t_xz0) what `lode train` trains with its defaults: an MLP with 2 hidden layers of 100
tanh units on standardized (x, θ), batch 128, Adam (lr 1e-3 decaying exponentially to 1e-4
over the epochs), gradient-norm clipping at 10, one thread; the score t̂ = ∇_θ0 log r̂ by
autograd (create_graph, as MadMiner does). Losses as lode's losses.cpp:
  rascal: y (r̂ − r_xz)² + (1 − y)(1/r̂ − 1/r_xz)² + α (1 − y)|t̂ − t_xz0|²
  cascal: BCE of ŝ = 1/(1 + r̂) against y            + α (1 − y)|t̂ − t_xz0|²
--model lode:     log r̂ = f(x, θ0) − f(x, θ1) (lode's network: two evaluations per row);
--model madminer: log r̂ = f(x, θ0) (MadMiner's single-parameterized model: one evaluation).
Prints samples/s over the optimizer steps only (data loading and set-up excluded), as
`lode train` does. Needs Debian's python3-torch and python3-numpy (scripts/setup.sh --bench).
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="directory of lode mine --for ratio")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--method", choices=["rascal", "cascal"], default="rascal")
    ap.add_argument("--model", choices=["lode", "madminer"], default="lode")
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--train-fraction", type=float, default=0.75,
                    help="rows trained on (lode's default validation is 0.25)")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    load = lambda n: np.load(os.path.join(a.data, n + ".npy")).astype(np.float64)
    x, th0, th1 = load("x"), load("theta0"), load("theta1")
    y, r, t0 = load("y")[:, 0], load("r_xz")[:, 0], load("t_xz0")
    n = int(a.train_fraction * len(x))
    x, th0, th1, y, r, t0 = x[:n], th0[:n], th1[:n], y[:n], r[:n], t0[:n]
    xs = (x - x.mean(0)) / x.std(0)
    th_all = np.concatenate([th0, th1])
    tm, ts = th_all.mean(0), th_all.std(0)
    ts[ts < 1e-12] = 1.0
    f32 = lambda v: torch.from_numpy(np.ascontiguousarray(v)).float()
    X, TH0, TH1, Y, T0 = f32(xs), f32(th0), f32(th1), f32(y), f32(t0)
    TM, TS = f32(tm[None, :]), f32(ts[None, :])
    R = f32(np.where(y > 0.5, r, 1.0 / r))  # the target at y = 1: r_xz; at y = 0: 1/r_xz

    n_in = X.shape[1] + TH0.shape[1]
    net = torch.nn.Sequential(torch.nn.Linear(n_in, 100), torch.nn.Tanh(), torch.nn.Linear(100, 100),
                              torch.nn.Tanh(), torch.nn.Linear(100, 1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    B = a.batch
    steps, t_steps = 0, 0.0
    for e in range(a.epochs):
        lr = 1e-3 * (1e-4 / 1e-3) ** (e / (a.epochs - 1) if a.epochs > 1 else 0.0)
        for g in opt.param_groups:
            g["lr"] = lr
        perm = torch.randperm(n)
        t_start = time.perf_counter()
        for b in range(0, n, B):
            idx = perm[b:b + B]
            xb, yb, rb, tb = X[idx], Y[idx], R[idx], T0[idx]
            th = TH0[idx].requires_grad_(True)
            if a.model == "lode":
                u0, u1 = torch.cat([xb, (th - TM) / TS], 1), torch.cat([xb, (TH1[idx] - TM) / TS], 1)
                f = net(torch.cat([u0, u1], 0)).squeeze(1)
                f0 = f[:len(idx)]
                log_r = f0 - f[len(idx):]
            else:
                f0 = log_r = net(torch.cat([xb, (th - TM) / TS], 1)).squeeze(1)
            t_hat = torch.autograd.grad(f0.sum(), th, create_graph=True)[0]
            if a.method == "rascal":
                lr_c = log_r.clamp(-40, 40)
                main_loss = (yb * (lr_c.exp() - rb) ** 2 + (1 - yb) * ((-lr_c).exp() - rb) ** 2).mean()
            else:
                main_loss = (yb * torch.nn.functional.softplus(log_r)
                             + (1 - yb) * torch.nn.functional.softplus(-log_r)).mean()
            score = ((1 - yb) * ((t_hat - tb) ** 2).sum(1)).mean()
            loss = main_loss + a.alpha * score
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)
            opt.step()
            if not math.isfinite(loss.item()):
                sys.exit("lean_torch_ratio: the loss became non-finite")
            steps += len(idx)
        t_steps += time.perf_counter() - t_start
        print(f"lean_torch_ratio: epoch {e + 1}/{a.epochs} train loss {loss.item():.6f}", file=sys.stderr)
    print(f"lean_torch_ratio {a.method} (model {a.model}): {n} rows, {a.epochs} epochs, "
          f"{steps / t_steps:.0f} samples/s")


if __name__ == "__main__":
    main()
