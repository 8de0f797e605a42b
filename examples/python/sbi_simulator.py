#!/usr/bin/python3
"""lode.simulate as the simulator the sbi package expects (issue 19, docs/python.md).

    PYTHONPATH=build/python /usr/bin/python3 examples/python/sbi_simulator.py

sbi calls a simulator with a batch of parameters, shape (batch, dim theta), and wants x of shape (batch, dim x) back
(sbi.inference.simulate_for_sbi, sbi.utils.user_input_checks.process_simulator). sbi itself is not needed here; with it,
`simulate_for_sbi(simulator, prior, num_simulations=1000)` runs this function. Every call uses fresh event numbers so
that no two calls repeat draws.
"""
import numpy as np

import lode

_next_event = 0


def simulator(theta):
    """theta: (batch, 2) array-like (a torch.Tensor converts with np.asarray); returns (batch, 2) float64."""
    global _next_event
    theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
    x = lode.simulate("two_moons", theta, seed=1, first_event=_next_event)
    _next_event += len(theta)
    return x


rng = np.random.default_rng(0)
prior_draws = rng.uniform(-1, 1, size=(1000, 2))  # two_moons' prior: Uniform([-1, 1]^2)
x = simulator(prior_draws)
assert x.shape == (1000, 2) and x.dtype == np.float64
assert simulator(prior_draws[:1]).shape == (1, 2)
print(f"simulator(theta of shape {prior_draws.shape}) -> x of shape {x.shape}; mean x = {x.mean(axis=0)}")
