"""lode: C++ simulators with gold (joint log-likelihood, joint score, joint ratios), in-process.

    import lode
    lode.models()                                    # every model: parameters, prior, capabilities
    x = lode.simulate("galton", [-0.8], n=10000, seed=1)          # (10000, 1) float64
    x = lode.simulate("two_moons", thetas, seed=1)   # one theta per row: sbi's batched simulator
    d = lode.mine("galton", for_="ratio", theta0="prior", theta1=[-0.6], n=100000)   # dict of arrays
    t = lode.trace("galton", [-0.8], seed=1, event=0, at=[[-0.6]])
    g = lode.generate("galton", [-0.8], {"row/3": 1.0})   # some choices fixed (Gen's generate)
    lode.load_plugin("./libmysim.so")                # a simulator of your own

Estimators (LibTorch, loaded only when used): lode.Estimator.load(dir), lode.train(...).
Docs: docs/python.md. Errors raise lode.LodeError (lode.UsageError for bad arguments) with
lode's message, naming what and where.
"""
from ._core import (LodeError, UsageError, check, exact_log_likelihood, generate, load_plugin, mine, model, models,
                    simulate, trace)

__all__ = ["LodeError", "UsageError", "models", "model", "load_plugin", "simulate", "mine", "trace", "generate",
           "check", "exact_log_likelihood",
           "Estimator", "train"]


def __getattr__(name):
    # The estimators live in lode._estimators, which links LibTorch: imported on first use only,
    # so that simulating and mining never load it.
    if name in ("Estimator", "train"):
        from . import _estimators
        return getattr(_estimators, name)
    raise AttributeError(f"module 'lode' has no attribute '{name}'")
