// lode._estimators — the LibTorch half of the Python module (issue 19, docs/python.md),
// imported by `lode` on first use of lode.Estimator or lode.train: trained estimators as
// numpy-in, numpy-out objects, and training with the settings of `lode train` (the same
// option parsing: tools/lode/estimators/train_job.hpp).
#include <fmt/format.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "errors.hpp"
#include "lode/error.hpp"
#include "lode/estimators/estimator.hpp"
#include "lode/model.hpp"
#include "train_job.hpp"

namespace py = pybind11;
namespace est = lode::estimators;
using Array = py::array_t<double, py::array::c_style | py::array::forcecast>;

namespace {

PyObject* lode_error = nullptr;   // lode._core.LodeError
PyObject* usage_error = nullptr;  // lode._core.UsageError

// x as rows of n_x columns: (n, n_x), or one row (n_x,).
est::Matrix rows_of(const Array& a, std::size_t cols, const char* what) {
  if (a.ndim() == 1 && static_cast<std::size_t>(a.shape(0)) == cols) {
    est::Matrix m(1, cols);
    std::copy(a.data(), a.data() + cols, m.data.begin());
    return m;
  }
  if (a.ndim() != 2 || static_cast<std::size_t>(a.shape(1)) != cols)
    throw lode::UsageError(fmt::format("{}: an array of shape (n, {}) (or ({},) for one row), got {} dimension{}", what,
                                       cols, cols, a.ndim(), a.ndim() == 1 ? "" : "s"));
  est::Matrix m(static_cast<std::size_t>(a.shape(0)), cols);
  std::copy(a.data(), a.data() + a.size(), m.data.begin());
  return m;
}

std::vector<double> vec(const py::object& o, std::size_t n, const char* what) {
  if (o.is_none()) return {};
  const Array a = py::cast<Array>(o);
  if (static_cast<std::size_t>(a.size()) != n)
    throw lode::UsageError(fmt::format("{}: {} values (the estimator's parameters), got {}", what, n, a.size()));
  std::vector<double> v(a.data(), a.data() + a.size());
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(v[i])) throw lode::UsageError(fmt::format("{}[{}] is {}", what, i, v[i]));
  return v;
}

Array column(const std::vector<double>& v) {
  Array out(static_cast<py::ssize_t>(v.size()));
  std::copy(v.begin(), v.end(), out.mutable_data());
  return out;
}

Array matrix(const est::Matrix& m) {
  Array out({m.rows, m.cols});
  std::copy(m.data.begin(), m.data.end(), out.mutable_data());
  return out;
}

// lode train's options from keyword arguments (values as text; lists joined by commas).
lode::cli::TrainOptions options_from(const std::string& method, const std::string& data, const py::kwargs& kw) {
  lode::cli::TrainOptions o;
  o.method = method;
  o.data = data;
  const std::map<std::string, std::string*> text = {
      {"hidden", &o.hidden},       {"activation", &o.activation}, {"epochs", &o.epochs},
      {"min_steps", &o.min_steps}, {"batch", &o.batch},           {"lr", &o.lr},
      {"lr_final", &o.lr_final},   {"alpha", &o.alpha},           {"validation", &o.validation},
      {"patience", &o.patience},   {"clip", &o.clip},             {"seed", &o.seed},
      {"threads", &o.threads},     {"ensemble", &o.ensemble},     {"reference", &o.reference},
      {"model", &o.model},         {"sallino_events", &o.sallino_events}, {"sallino_bins", &o.sallino_bins},
      {"flow", &o.flow},           {"transforms", &o.transforms}, {"bins", &o.bins},
      {"tail_bound", &o.tail_bound}, {"theta_map", &o.theta_map}, {"latent_dim", &o.latent_dim},
      {"schedule", &o.schedule},   {"pie_epsilon", &o.pie_epsilon}, {"image", &o.image},
      {"conv", &o.conv}};
  const std::map<std::string, bool*> flags = {{"drop_invalid", &o.drop_invalid}, {"arrays", &o.arrays},
                                              {"marginal_reference", &o.marginal_reference}};
  for (const auto& [k, v] : kw) {
    const std::string key = py::str(k);
    if (auto f = flags.find(key); f != flags.end()) {
      *f->second = py::cast<bool>(v);
      continue;
    }
    auto t = text.find(key);
    if (t == text.end()) {
      std::string known;
      for (const auto& [name, _] : text) known += (known.empty() ? "" : ", ") + name;
      throw lode::UsageError(fmt::format("train: unknown option '{}' (options: {}, drop_invalid, arrays, marginal_reference)", key, known));
    }
    if (py::isinstance<py::str>(v)) {
      *t->second = py::cast<std::string>(v);
    } else if (py::isinstance<py::list>(v) || py::isinstance<py::tuple>(v)) {
      std::string joined;
      for (const auto& e : v) joined += (joined.empty() ? "" : ",") + py::cast<std::string>(py::repr(e));
      *t->second = joined;
    } else {
      *t->second = py::cast<std::string>(py::repr(v));
    }
  }
  return o;
}

est::Estimator train(const std::string& method, const std::string& data, py::object out, bool quiet,
                     const py::kwargs& kw) {
  lode::cli::TrainOptions o = options_from(method, data, kw);
  o.quiet = quiet;
  est::Settings s = lode::cli::settings_from(o);
  if (!out.is_none()) {
    o.out = out.cast<std::string>();
    try {
      est::Estimator::check_writable(o.out);
    } catch (const est::EstimatorError& e) {
      throw lode::Error(fmt::format("out '{}': {} (nothing was trained)", o.out, e.what()));
    }
  }
  lode::cli::PreparedTraining prepared = lode::cli::prepare_training(o, s);
  if (!quiet)
    for (const std::string& note : prepared.notes) fmt::print(stderr, "lode.train {}: {}\n", method, note);
  const auto progress = [&](const est::Progress& p) {
    if (quiet) return;
    const int every = std::max(1, p.epochs / 10);
    if (p.epoch % every == 0 || p.epoch == p.epochs || p.epoch == 1)
      fmt::print(stderr, "lode.train {}:{} epoch {}/{}  train loss {:.6g}  validation loss {:.6g}\n", method,
                 p.phase.empty() ? "" : " " + p.phase, p.epoch, p.epochs, p.train_loss, p.validation_loss);
  };
  std::optional<est::Estimator> e;
  {
    py::gil_scoped_release release;
    e.emplace(est::Estimator::train(prepared.data, s, progress));
  }
  if (!o.out.empty()) e->save(o.out);
  for (const est::TrainReport& r : e->reports())
    if (r.nan)
      throw lode::Error(fmt::format("lode.train {}: the loss became NaN or infinite: {}{}; lower lr, or check the "
                                    "data",
                                    method, r.stopped, o.out.empty() ? "" : fmt::format(" (saved to '{}')", o.out)));
  return *e;
}

}  // namespace

PYBIND11_MODULE(_estimators, mod) {
  mod.doc() = "lode's trained estimators (LibTorch), imported on first use (docs/python.md)";
  py::module_ core = py::module_::import("lode._core");
  lode_error = core.attr("LodeError").ptr();
  usage_error = core.attr("UsageError").ptr();
  Py_INCREF(lode_error);
  Py_INCREF(usage_error);
  lode::python::translate_errors(lode_error, usage_error);

  py::class_<est::Estimator>(mod, "Estimator", "A trained estimator (lode train): evaluations as numpy arrays")
      .def_static("load", [](const std::string& dir) { return est::Estimator::load(dir); }, py::arg("dir"),
                  "Load MODEL_DIR/estimator.json (written by lode train or Estimator.save)")
      .def("save", &est::Estimator::save, py::arg("dir"))
      .def_property_readonly("method", [](const est::Estimator& e) { return est::to_string(e.method()); })
      .def_property_readonly("n_x", &est::Estimator::n_x)
      .def_property_readonly("n_theta", &est::Estimator::n_theta)
      .def_property_readonly("marginal_reference", &est::Estimator::marginal_reference,
                             "True when trained against the prior marginal (lode mine --theta1 marginal:K)")
      .def_property_readonly("model", [](const est::Estimator& e) { return e.names().model; })
      .def_property_readonly("parameters", [](const est::Estimator& e) { return e.names().parameters; })
      .def_property_readonly("observables", [](const est::Estimator& e) { return e.names().observables; })
      .def_property_readonly("reports", [](const est::Estimator& e) {
        py::list l;
        for (const est::TrainReport& r : e.reports()) {
          py::dict d;
          d["epochs_run"] = r.epochs_run, d["best_epoch"] = r.best_epoch, d["train_rows"] = r.train_rows;
          d["validation_rows"] = r.validation_rows, d["best_validation_loss"] = r.best_validation_loss;
          d["final_train_loss"] = r.final_train_loss, d["seconds"] = r.seconds;
          d["samples_per_second"] = r.samples_per_second, d["stopped"] = r.stopped, d["nan"] = r.nan;
          d["selection"] = r.selection;
          l.append(d);
        }
        return l;
      })
      .def("log_ratio", [](const est::Estimator& e, const Array& x, const Array& theta0, py::object theta1) {
        const est::Matrix m = rows_of(x, e.n_x(), "x");
        const std::vector<double> t0 = vec(theta0, e.n_theta(), "theta0"), t1 = vec(theta1, e.n_theta(), "theta1");
        std::vector<double> out;
        {
          py::gil_scoped_release release;
          out = e.log_ratio(m, t0, t1);
        }
        return column(out);
      }, py::arg("x"), py::arg("theta0"), py::arg("theta1") = py::none(),
         "log r(x_i | theta0, theta1) per row (ratio methods; theta1 may be left out for a fixed-theta1 estimator, "
         "and is the prior marginal when left out of a marginal-reference one)")
      .def("log_ratio_rows", [](const est::Estimator& e, const Array& x, const Array& theta0, py::object theta1) {
        const est::Matrix m = rows_of(x, e.n_x(), "x"), t0 = rows_of(theta0, e.n_theta(), "theta0");
        est::Matrix t1 = theta1.is_none() ? est::Matrix() : rows_of(py::cast<Array>(theta1), e.n_theta(), "theta1");
        if (theta1.is_none()) {  // the fixed θ1 in every row (a doubly parameterized estimator throws)
          const std::vector<double> f = e.fixed_theta1();  // (a marginal-reference one: no θ1, 0 columns)
          if (f.empty() && !e.marginal_reference())
            throw lode::UsageError("theta1: this estimator is doubly parameterized; give theta1 rows");
          t1 = est::Matrix(m.rows, f.size());
          for (std::size_t r = 0; r < m.rows; ++r) std::copy(f.begin(), f.end(), t1.data.begin() + r * f.size());
        }
        for (const est::Matrix* t : {static_cast<const est::Matrix*>(&t0), static_cast<const est::Matrix*>(&t1)}) {
          if (t->rows != m.rows && t->cols > 0)
            throw lode::UsageError(fmt::format("{}: {} rows, x has {}", t == &t0 ? "theta0" : "theta1", t->rows, m.rows));
          for (std::size_t i = 0; i < t->data.size(); ++i)
            if (!std::isfinite(t->data[i]))
              throw lode::UsageError(fmt::format("{} row {} column {} is {}", t == &t0 ? "theta0" : "theta1",
                                                 i / e.n_theta(), i % e.n_theta(), t->data[i]));
        }
        std::vector<double> out;
        {
          py::gil_scoped_release release;
          out = e.log_ratio_rows(m, t0, t1);
        }
        return column(out);
      }, py::arg("x"), py::arg("theta0"), py::arg("theta1") = py::none(),
         "log r(x_i | theta0_i, theta1_i) with a parameter point per row (theta0: (n, dim theta); theta1 the same, or "
         "left out for a fixed-theta1 estimator): one batched pass")
      .def("log_ratio_points", [](const est::Estimator& e, const Array& x, const Array& theta0, py::object theta1) {
        const est::Matrix m = rows_of(x, e.n_x(), "x"), points = rows_of(theta0, e.n_theta(), "theta0");
        for (std::size_t i = 0; i < points.data.size(); ++i)
          if (!std::isfinite(points.data[i]))
            throw lode::UsageError(fmt::format("theta0 row {} column {} is {}", i / e.n_theta(), i % e.n_theta(),
                                               points.data[i]));
        std::vector<double> t1;
        if (theta1.is_none()) {  // the fixed θ1 (a marginal-reference estimator: none)
          t1 = e.fixed_theta1();
          if (t1.empty() && !e.marginal_reference())
            throw lode::UsageError("theta1: this estimator is doubly parameterized; give theta1");
        } else {
          t1 = vec(theta1, e.n_theta(), "theta1");
        }
        std::vector<double> out;
        {
          py::gil_scoped_release release;
          out = e.log_ratio_points(m, points, t1);
        }
        est::Matrix r(points.rows, m.rows);
        r.data = std::move(out);
        return matrix(r);
      }, py::arg("x"), py::arg("theta0"), py::arg("theta1") = py::none(),
         "log r(x_j | theta0_i, theta1) for every point theta0_i (rows of theta0: (m, dim theta)) and every row x_j: "
         "(m, n), the values of log_ratio_rows on x repeated once per point (an image network runs once per image)")
      .def("score", [](const est::Estimator& e, const Array& x, py::object theta0, py::object theta1) {
        const est::Matrix m = rows_of(x, e.n_x(), "x");
        const std::vector<double> t0 = vec(theta0, e.n_theta(), "theta0"), t1 = vec(theta1, e.n_theta(), "theta1");
        est::Matrix out;
        {
          py::gil_scoped_release release;
          out = e.score(m, t0, t1);
        }
        return matrix(out);
      }, py::arg("x"), py::arg("theta0") = py::none(), py::arg("theta1") = py::none(),
         "t(x_i | theta0) per row: (n, dim theta) (score methods at their reference; ratio methods at theta0)")
      .def("log_density", [](const est::Estimator& e, const Array& x, const Array& theta) {
        const est::Matrix m = rows_of(x, e.n_x(), "x");
        const std::vector<double> t = vec(theta, e.n_theta(), "theta");
        std::vector<double> out;
        {
          py::gil_scoped_release release;
          out = e.log_density(m, t);
        }
        return column(out);
      }, py::arg("x"), py::arg("theta"), "log p(x_i | theta) per row (nle, scandal, the manifold flows)")
      .def("sample_posterior", [](const est::Estimator& e, const Array& x, std::size_t n, std::uint64_t seed,
                                  double time_limit) {
        const est::Matrix m = rows_of(x, e.n_x(), "x");
        if (m.rows != 1) throw lode::UsageError(fmt::format("x: npe is conditioned on one observation, got {} rows", m.rows));
        est::PosteriorSampling ps;
        ps.draws = n;
        ps.seed = seed;
        ps.time_limit = time_limit;
        if (!e.names().model.empty()) {  // draws outside the prior's support are rejected, as lode posterior does
          const lode::Model& model = lode::Registry::global().get(e.names().model);
          if (model.capabilities().prior_density)
            ps.in_support = [&model](std::span<const double> t) { return std::isfinite(model.prior.log_density(t)); };
        }
        est::PosteriorDraws d;
        {
          py::gil_scoped_release release;
          d = e.sample_posterior(m.row(0), ps);
        }
        return matrix(d.theta);
      }, py::arg("x"), py::arg("n"), py::arg("seed") = 1, py::arg("time_limit") = 60.0,
         "npe: n draws from p(theta | x) for one observation x, (n, dim theta); the same draws as lode posterior");

  mod.def("train", &train, py::arg("method"), py::arg("data"), py::arg("out") = py::none(), py::arg("quiet") = true,
          "Train on a dataset directory of lode mine with the options of lode train as keyword arguments "
          "(epochs=20, hidden=[32, 32], lr=1e-3, seed=3, ...; the same settings as the command); saves to out when "
          "given; returns the Estimator");
}
