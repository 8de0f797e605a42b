"""The Python module `lode` (issue 19) against the lode command line: the same arrays and dicts for the same seeds,
and clear exceptions for bad input. Run by CTest (tests/CMakeLists.txt: PYTHONPATH=BUILD/python, LODE_CLI=the lode
binary, LODE_TEST_MODELS_PLUGIN=the test plugin) with Debian's python3 and numpy:

    PYTHONPATH=build/python LODE_CLI=build/tools/lode /usr/bin/python3 -m unittest discover -s tests/python -v
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

import lode

LODE = os.environ.get("LODE_CLI", "build/tools/lode")
PLUGIN = os.environ.get("LODE_TEST_MODELS_PLUGIN", "")


def cli(*args):
    """Runs the lode binary; returns its stdout (fails the test with stderr when the status is not 0)."""
    r = subprocess.run([LODE, *map(str, args)], capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"lode {' '.join(map(str, args))} exited {r.returncode}: {r.stderr}")
    return r.stdout


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)


class Models(Base):
    def test_models_as_the_command_lists_them(self):
        listed = json.loads(cli("models", "--json"))
        mine = {m["name"]: m for m in lode.models()}
        self.assertEqual(sorted(mine), sorted(m["name"] for m in listed))
        for m in listed:
            self.assertEqual(mine[m["name"]]["parameters"], m["parameters"])
            self.assertEqual(mine[m["name"]]["observables"], m["observables"])
        g = lode.model("galton")
        self.assertEqual(g["prior"]["range"], [(-1.0, -0.4)])
        self.assertTrue(g["capabilities"]["gold"])
        self.assertTrue(g["capabilities"]["exact_likelihood"])
        self.assertFalse(lode.model("two_moons")["capabilities"]["gold"])


class Simulate(Base):
    def test_one_point_equals_lode_simulate(self):
        for model, theta in [("galton", "-0.8"), ("two_moons", "0.3,-0.2"), ("slcp", "0.7,-2.9,-1,-0.9,0.6")]:
            f = self.path(model + ".npy")
            cli("simulate", model, "--theta", theta, "-n", 500, "--seed", 7, "--first-event", 3, "--out", f)
            point = [float(v) for v in theta.split(",")]
            x = lode.simulate(model, point, n=500, seed=7, first_event=3)
            np.testing.assert_array_equal(x, np.load(f))
            self.assertEqual(x.dtype, np.float64)
            np.testing.assert_array_equal(lode.simulate(model, np.array(point), n=500, seed=7, first_event=3, threads=3), x)

    def test_one_point_per_event_is_the_batched_simulator_sbi_expects(self):
        thetas = np.array([[0.1, 0.2], [-0.5, 0.4], [0.9, -0.9], [0.0, 0.0]])
        x = lode.simulate("two_moons", thetas, seed=4)
        self.assertEqual(x.shape, (4, 2))
        for i, t in enumerate(thetas):
            f = self.path(f"e{i}.npy")
            cli("simulate", "two_moons", "--theta", f"{t[0]},{t[1]}", "-n", 1, "--seed", 4, "--first-event", i, "--out", f)
            np.testing.assert_array_equal(x[i], np.load(f)[0])
        np.testing.assert_array_equal(lode.simulate("two_moons", thetas, seed=4, threads=2), x)

        # sbi's simulator: a callable from a (batch, dim theta) array of parameters to (batch, dim x).
        def simulator(theta_batch):
            return lode.simulate("two_moons", np.asarray(theta_batch, dtype=np.float64), seed=11)

        self.assertEqual(simulator(np.zeros((7, 2))).shape, (7, 2))

    def test_bad_input_raises_clear_exceptions(self):
        with self.assertRaisesRegex(lode.UsageError, r"unknown model 'galtonx' \(known models: .*galton"):
            lode.simulate("galtonx", [0.1], n=1)
        with self.assertRaisesRegex(ValueError, r"model 'galton' has 1 parameter \(theta\), got an array of shape \(2\)"):
            lode.simulate("galton", [0.1, 0.2], n=1)
        with self.assertRaisesRegex(lode.UsageError, r"theta\[1, 0\]: parameter 'theta' of model 'galton' is nan"):
            lode.simulate("galton", np.array([[-0.8], [np.nan]]))
        with self.assertRaisesRegex(lode.UsageError, r"shape \(n, 2\), got \(3, 3\)"):
            lode.simulate("two_moons", np.zeros((3, 3)))
        with self.assertRaisesRegex(lode.UsageError, "n: the number of events is needed"):
            lode.simulate("galton", [-0.8])
        with self.assertRaisesRegex(lode.UsageError, r"n = 3: theta has 2 rows"):
            lode.simulate("galton", np.array([[-0.8], [-0.7]]), n=3)
        # A value the model refuses: lode's run error, naming the model and the event.
        with self.assertRaisesRegex(lode.LodeError,
                                    r"model 'sir', seed 1, event 0, address 'beta': contact rate beta = -1 must be > 0"):
            lode.simulate("sir", [-1.0, 0.1], n=3, threads=2)


class Mine(Base):
    CASES = [
        ("galton", "ratio", dict(theta0="prior", theta1=[-0.6]), ["--theta0", "prior", "--theta1", "-0.6"]),
        ("galton", "local", dict(theta=[-0.8]), ["--theta", "-0.8"]),
        ("weinberg", "density", dict(theta="uniform:0.5..1.5"), ["--theta", "uniform:0.5..1.5"]),
        ("two_moons", "plain", dict(theta="prior"), ["--theta", "prior"]),
    ]

    def test_in_memory_and_on_disk_equal_lode_mine(self):
        for model, purpose, kwargs, args in self.CASES:
            with self.subTest(model=model, purpose=purpose):
                d = self.path(f"{model}-{purpose}")
                cli("mine", model, "--for", purpose, *args, "-n", 5000, "--seed", 9, "--shard-size", 1000, "--out", d)
                arrays = lode.mine(model, for_=purpose, n=5000, seed=9, threads=2, shard_size=700, **kwargs)
                names = sorted(f[:-4] for f in os.listdir(d) if f.endswith(".npy"))
                self.assertEqual(sorted(arrays), names)
                for name in names:
                    np.testing.assert_array_equal(arrays[name], np.load(os.path.join(d, name + ".npy")), err_msg=name)
                # out=DIR: a dataset directory, the same files.
                d2 = self.path(f"{model}-{purpose}-py")
                self.assertEqual(lode.mine(model, for_=purpose, n=5000, seed=9, out=d2, shard_size=1000, **kwargs), d2)
                for name in names:
                    with open(os.path.join(d, name + ".npy"), "rb") as a, open(os.path.join(d2, name + ".npy"), "rb") as b:
                        self.assertEqual(a.read(), b.read(), name)

    def test_bad_input(self):
        with self.assertRaisesRegex(lode.UsageError, "for_='plain' with theta"):
            lode.mine("two_moons", for_="ratio", theta0="prior", theta1=[0.1, 0.1], n=10)
        with self.assertRaisesRegex(lode.UsageError, "theta1: required"):
            lode.mine("galton", for_="ratio", theta0="prior", n=10)
        with self.assertRaisesRegex(lode.UsageError, "for_='sideways'"):
            lode.mine("galton", for_="sideways", theta=[-0.8], n=10)
        with self.assertRaisesRegex(lode.UsageError, "theta"):
            lode.mine("galton", for_="local", theta="gridd:1", n=10)


class TraceAndCheck(Base):
    def test_trace_equals_lode_trace_json(self):
        expected = json.loads(cli("trace", "galton", "--theta", "-0.8", "--seed", 3, "--event", 5, "--at", "-0.6",
                                  "--at", "-0.9", "--json"))
        got = lode.trace("galton", [-0.8], seed=3, event=5, at=[[-0.6], [-0.9]])
        self.assertEqual(got, expected)
        self.assertEqual([r["theta"] for r in got["ratios"]], [[-0.6], [-0.9]])

    def test_check_equals_lode_check_json(self):
        expected = json.loads(cli("check", "weinberg", "-n", 300, "--seed", 2, "--json"))
        got = lode.check("weinberg", n=300, seed=2)
        self.assertEqual(got, expected)
        self.assertTrue(got["passed"])


class Generate(Base):
    def test_every_choice_constrained_gives_the_trace(self):
        t = lode.trace("galton", [-0.8], seed=3, event=5)
        constraints = {c["address"]: [c["value"]] for c in t["choices"] if c["kind"] in ("sample", "observe")}
        g = lode.generate("galton", [-0.8], constraints, seed=99, event=1)  # another stream
        self.assertEqual(g["log_p"], t["log_p"])
        self.assertEqual(g["weight"], t["log_p"])
        self.assertEqual(list(g["x"]), t["x"])
        self.assertEqual(list(g["score"]), t["score"])
        self.assertEqual([c["log_p"] for c in g["choices"]], [c["log_p"] for c in t["choices"]])

    def test_some_choices_constrained(self):
        g = lode.generate("galton", [-0.8], {"row/3": 1.0, "row/7": [0.0]}, seed=1, event=0)
        by_address = {c["address"]: c for c in g["choices"]}
        self.assertEqual(by_address["row/3"]["value"], 1.0)
        self.assertEqual(by_address["row/7"]["value"], 0.0)
        self.assertAlmostEqual(g["weight"], by_address["row/3"]["log_p"] + by_address["row/7"]["log_p"], places=14)
        self.assertAlmostEqual(g["log_p"], sum(c["log_p"] for c in g["choices"]), places=12)

    def test_mine_refuses_an_empty_shard(self):
        with self.assertRaisesRegex(lode.UsageError, "shard_size: give at least 1 event per shard"):
            lode.mine("galton", for_="local", theta=[-0.8], n=10, shard_size=0)

    def test_errors_name_the_address(self):
        with self.assertRaisesRegex(lode.LodeError, "'nowhere'"):
            lode.generate("galton", [-0.8], {"nowhere": 1.0})
        with self.assertRaisesRegex(lode.LodeError, "'row/0'.*2 values"):
            lode.generate("galton", [-0.8], {"row/0": [1.0, 0.0]})


class ExactLikelihood(Base):
    def test_equals_lode_evaluate_exact(self):
        x = lode.simulate("galton", [-0.7], n=200, seed=3)
        np.save(self.path("x.npy"), x)
        cli("evaluate", "--exact", "galton", "--x", self.path("x.npy"), "--theta0", "-0.8", "--out", self.path("lp.npy"))
        cli("evaluate", "--exact", "galton", "--x", self.path("x.npy"), "--theta0", "-0.8", "--score", "--out",
            self.path("t.npy"))
        np.testing.assert_array_equal(lode.exact_log_likelihood("galton", x, [-0.8]), np.load(self.path("lp.npy"))[:, 0])
        lp, t = lode.exact_log_likelihood("galton", x, [-0.8], score=True)
        np.testing.assert_array_equal(t, np.load(self.path("t.npy")))
        with self.assertRaisesRegex(lode.UsageError, "model 'lotka_volterra' has no exact likelihood"):
            lode.exact_log_likelihood("lotka_volterra", np.zeros((1, 9)), [0.01, 0.5, 1.0, 0.01])
        with self.assertRaisesRegex(lode.UsageError, r"x: model 'galton' has 1 observable; give an array of shape \(n, 1\)"):
            lode.exact_log_likelihood("galton", np.zeros((2, 2)), [-0.8])


class Plugins(Base):
    def test_a_plugin_that_cannot_load_raises(self):
        bad = self.path("not-a-library.so")
        with open(bad, "w") as f:
            f.write("not ELF")
        with self.assertRaisesRegex(lode.LodeError, "cannot load plugin '.*not-a-library.so'"):
            lode.load_plugin(bad)
        with self.assertRaisesRegex(lode.LodeError, "cannot load plugin"):
            lode.load_plugin(self.path("missing.so"))

    @unittest.skipUnless(PLUGIN, "LODE_TEST_MODELS_PLUGIN is not set")
    def test_plugin_models_and_skipped_events(self):
        lode.load_plugin(PLUGIN)
        self.assertIn("test_shifted_output", [m["name"] for m in lode.models()])
        # Its gold is refused at every event: mining raises, naming the count and the first reason.
        with self.assertRaisesRegex(lode.LodeError, r"150 of 150 events were skipped .*no row at all.*first: event 0"):
            lode.mine("test_shifted_output", for_="local", theta=[0.1], n=150)


if __name__ == "__main__":
    unittest.main()


class Estimators(Base):
    """lode.train / lode.Estimator against lode train / evaluate / posterior (LibTorch, loaded on first use)."""

    def test_torch_is_loaded_only_for_estimators(self):
        code = ("import lode, numpy\n"
                "lode.simulate('galton', [-0.8], n=10); lode.mine('galton', for_='local', theta=[-0.8], n=10)\n"
                "maps = lambda: open('/proc/self/maps').read()\n"
                "print('libtorch_cpu' in maps())\n"
                "lode.Estimator\n"
                "print('libtorch_cpu' in maps())\n")
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split(), ["False", "True"])

    def test_train_and_evaluate_equal_the_command(self):
        data = self.path("ratio")
        cli("mine", "galton", "--for", "ratio", "--theta0", "uniform:-1..-0.4", "--theta1", "-0.6", "-n", 3000, "--seed",
            4, "--out", data)
        cli("train", "rascal", "--data", data, "--out", self.path("cli"), "--epochs", 3, "--hidden", "32,32", "--seed", 3,
            "-q")
        e = lode.train("rascal", data, out=self.path("py"), epochs=3, hidden=[32, 32], seed=3)
        with open(self.path("cli/estimator.json")) as a, open(self.path("py/estimator.json")) as b:
            ja, jb = json.load(a), json.load(b)
        self.assertEqual(ja["settings"], jb["settings"])
        self.assertEqual(ja["members"][0]["parameters"], jb["members"][0]["parameters"])
        self.assertEqual((e.method, e.n_x, e.n_theta, e.model, e.parameters), ("rascal", 1, 1, "galton", ["theta"]))
        x = np.arange(0, 31, dtype=np.float64).reshape(-1, 1)
        np.save(self.path("x.npy"), x)
        cli("evaluate", "--model", self.path("cli"), "--x", self.path("x.npy"), "--theta0", "-0.8", "--out",
            self.path("lr.npy"))
        cli("evaluate", "--model", self.path("cli"), "--x", self.path("x.npy"), "--theta0", "-0.8", "--score", "--out",
            self.path("t.npy"))
        loaded = lode.Estimator.load(self.path("cli"))
        np.testing.assert_array_equal(loaded.log_ratio(x, [-0.8]), np.load(self.path("lr.npy"))[:, 0])
        np.testing.assert_array_equal(e.log_ratio(x, [-0.8], [-0.6]), np.load(self.path("lr.npy"))[:, 0])
        np.testing.assert_array_equal(loaded.score(x, [-0.8]), np.load(self.path("t.npy")))
        # One point per row: the rows equal the one-point calls.
        th = np.array([[-0.8], [-0.7]] * 15 + [[-0.8]])
        rows = loaded.log_ratio_rows(x, th)
        np.testing.assert_array_equal(rows[th[:, 0] == -0.8], loaded.log_ratio(x, [-0.8])[th[:, 0] == -0.8])
        np.testing.assert_array_equal(rows[th[:, 0] == -0.7], loaded.log_ratio(x, [-0.7])[th[:, 0] == -0.7])
        np.testing.assert_array_equal(loaded.log_ratio_rows(x, th, np.full((31, 1), -0.6)), rows)
        with self.assertRaisesRegex(lode.UsageError, "theta0: 2 rows, x has 31"):
            loaded.log_ratio_rows(x, th[:2])
        # Many points against the same rows: log_ratio_rows on x repeated once per point.
        pts = np.array([[-0.8], [-0.7], [-0.55]])
        grid = loaded.log_ratio_points(x, pts)
        self.assertEqual(grid.shape, (3, 31))
        np.testing.assert_array_equal(grid.ravel(), loaded.log_ratio_rows(np.tile(x, (3, 1)), np.repeat(pts, 31, axis=0)))
        np.testing.assert_array_equal(loaded.log_ratio_points(x, pts, [-0.6]), grid)
        self.assertEqual(loaded.reports[0]["epochs_run"], 3)

    def test_marginal_reference_equals_the_command(self):
        # theta1="marginal:K": the same bytes as lode mine; the estimator's output is log r̂
        # against the mixture (theta1 left out), and with theta1 the difference of two outputs.
        data, py = self.path("marginal"), self.path("marginal-py")
        cli("mine", "galton", "--for", "ratio", "--theta0", "prior", "--theta1", "marginal:20", "-n", 600, "--seed", 2,
            "--out", data)
        self.assertEqual(lode.mine("galton", for_="ratio", theta0="prior", theta1="marginal:20", n=600, seed=2, out=py),
                         py)
        for f in ["x", "theta0", "theta1", "y", "r_xz", "t_xz0"]:
            np.testing.assert_array_equal(np.load(os.path.join(data, f + ".npy")), np.load(os.path.join(py, f + ".npy")))
        self.assertTrue(np.isnan(np.load(os.path.join(py, "t_xz1.npy"))).all())
        with open(os.path.join(py, "meta.json")) as f:
            self.assertEqual(json.load(f)["reference"]["points"], 20)
        e = lode.train("alices", py, out=self.path("marginal-est"), epochs=2, hidden=[16], seed=1)
        self.assertTrue(e.marginal_reference)
        x = np.arange(5, 25, dtype=np.float64).reshape(-1, 1)
        a, b = e.log_ratio(x, [-0.8]), e.log_ratio(x, [-0.6])
        np.testing.assert_allclose(e.log_ratio(x, [-0.8], [-0.6]), a - b, atol=1e-5)
        np.testing.assert_array_equal(e.log_ratio_rows(x, np.full((20, 1), -0.8)), a)

    def test_density_estimators_equal_the_command(self):
        data = self.path("moons")
        cli("mine", "two_moons", "--for", "plain", "--theta", "prior", "-n", 2000, "--seed", 5, "--out", data)
        npe = lode.train("npe", data, out=self.path("npe"), epochs=2, transforms=2, hidden=20, seed=2)
        obs = lode.simulate("two_moons", [0.2, -0.1], n=1, seed=9)
        np.save(self.path("obs.npy"), obs)
        cli("posterior", "--model", self.path("npe"), "--observed", self.path("obs.npy"), "-n", 300, "--seed", 3, "--out",
            self.path("post.npy"))
        np.testing.assert_array_equal(npe.sample_posterior(obs[0], 300, seed=3), np.load(self.path("post.npy")))
        nle = lode.train("nle", data, out=self.path("nle"), epochs=2, transforms=2, hidden=20, seed=2)
        x = lode.simulate("two_moons", [0.2, -0.1], n=50, seed=10)
        np.save(self.path("x.npy"), x)
        cli("evaluate", "--model", self.path("nle"), "--x", self.path("x.npy"), "--theta0", "0.2,-0.1", "--out",
            self.path("lp.npy"))
        np.testing.assert_array_equal(nle.log_density(x, [0.2, -0.1]), np.load(self.path("lp.npy"))[:, 0])

    def test_images_float32_and_the_cnn_equal_the_command(self):
        # An image model: x.npy float32 (x_dtype="auto") with its shape in meta.json, as lode mine
        # writes it; an estimator with the CNN (image="auto") equals lode train's.
        data, wide = self.path("lens"), self.path("lens64")
        cli("mine", "lensing_fix_32", "--for", "ratio", "--theta0", "prior", "--theta1", "0.05,-1.9", "-n", 120,
            "--seed", 4, "--out", data)
        self.assertEqual(lode.mine("lensing_fix_32", for_="ratio", theta0="prior", theta1=[0.05, -1.9], n=120, seed=4,
                                   out=wide, x_dtype="float64"), wide)
        x32, x64 = np.load(os.path.join(data, "x.npy")), np.load(os.path.join(wide, "x.npy"))
        self.assertEqual((x32.dtype, x64.dtype, x32.shape), (np.float32, np.float64, (120, 1024)))
        np.testing.assert_array_equal(x32.astype(np.float64), x64)
        with open(os.path.join(data, "meta.json")) as f:
            self.assertEqual(json.load(f)["files"]["x"]["image_shape"], [32, 32])
        cli("train", "carl", "--data", data, "--out", self.path("cli-img"), "--epochs", 2, "--image", "auto", "--conv",
            "4,8", "--hidden", 16, "-q")
        e = lode.train("carl", data, out=self.path("py-img"), epochs=2, image="auto", conv=[4, 8], hidden=[16])
        with open(self.path("cli-img/estimator.json")) as a, open(self.path("py-img/estimator.json")) as b:
            ja, jb = json.load(a), json.load(b)
        self.assertEqual(ja["settings"], jb["settings"])
        self.assertEqual(ja["members"][0]["parameters"], jb["members"][0]["parameters"])
        th = np.tile([[0.1, -2.0]], (5, 1))
        np.testing.assert_array_equal(e.log_ratio_rows(x64[:5], th), e.log_ratio(x64[:5], [0.1, -2.0]))
        with self.assertRaisesRegex(lode.UsageError, "x_dtype='f16'"):
            lode.mine("lensing_fix_32", for_="ratio", theta0="prior", theta1=[0.05, -1.9], n=2, out=self.path("bad"),
                      x_dtype="f16")

    def test_npe_on_images_equals_the_command(self):
        # NPE with the CNN (image="auto"): the same weights as lode train npe --image auto, and
        # sample_posterior gives lode posterior's draws for one image.
        data = self.path("lens-npe")
        cli("mine", "lensing_fix_32", "--for", "plain", "--theta", "prior", "-n", 100, "--seed", 6, "--out", data)
        cli("train", "npe", "--data", data, "--out", self.path("cli-npe"), "--epochs", 1, "--image", "auto", "--conv",
            "4,8", "-q")
        e = lode.train("npe", data, out=self.path("py-npe"), epochs=1, image="auto", conv=[4, 8])
        with open(self.path("cli-npe/estimator.json")) as a, open(self.path("py-npe/estimator.json")) as b:
            ja, jb = json.load(a), json.load(b)
        self.assertEqual(ja["settings"], jb["settings"])
        self.assertEqual(ja["members"][0]["parameters"], jb["members"][0]["parameters"])
        x = np.load(os.path.join(data, "x.npy"))[:1].astype(np.float64)
        np.save(self.path("obs.npy"), x)
        cli("posterior", "--model", self.path("cli-npe"), "--observed", self.path("obs.npy"), "-n", 200, "--seed", 3,
            "--out", self.path("draws.npy"))
        np.testing.assert_array_equal(e.sample_posterior(x, 200, seed=3), np.load(self.path("draws.npy")))

    def test_estimator_errors(self):
        with self.assertRaisesRegex(lode.LodeError, "estimator.json"):
            lode.Estimator.load(self.path("nowhere"))
        with self.assertRaisesRegex(lode.UsageError, r"unknown option 'epoch' \(options: .*epochs"):
            lode.train("rascal", self.path("nowhere"), epoch=3)
        with self.assertRaisesRegex(lode.UsageError, "METHOD: .*'rascl'"):
            lode.train("rascl", self.path("nowhere"))
