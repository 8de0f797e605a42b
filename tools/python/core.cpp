// lode._core — the torch-free half of the Python module `lode` (issue 19, docs/python.md):
// models, plugins, simulation, traces, mining and gold checks on lode's libraries, returning
// numpy arrays and dicts. lode's errors become lode.LodeError / lode.UsageError with lode's
// message; long calls release the GIL.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "errors.hpp"
#include "lode/driver.hpp"
#include "lode/error.hpp"
#include "lode/mining/gold_check.hpp"
#include "lode/mining/image_shape.hpp"
#include "lode/mining/job.hpp"
#include "lode/mining/scheduler.hpp"
#include "lode/mining/shard_miner.hpp"
#include "lode/mining/theta_spec.hpp"
#include "lode/mining/trace_json.hpp"
#include "lode/model.hpp"
#include "lode/plugin.hpp"
#include "lode/schema.hpp"

namespace py = pybind11;
using Array = py::array_t<double, py::array::c_style | py::array::forcecast>;

namespace {

const lode::Model& model_named(const std::string& name) { return lode::Registry::global().get(name); }

// A dict from lode's JSON (via Python's json module: numbers and nulls as lode wrote them).
py::object to_python(const nlohmann::ordered_json& j) { return py::module_::import("json").attr("loads")(j.dump()); }

// θ as a list of numbers of the model's dimension, all finite.
std::vector<double> point(const lode::Model& m, const Array& theta, const char* what) {
  if (theta.ndim() > 1 || static_cast<std::size_t>(theta.size()) != m.parameters.size())
    throw lode::UsageError(fmt::format("{}: model '{}' has {} parameter{} ({}), got an array of shape ({})", what,
                                       m.name, m.parameters.size(), m.parameters.size() == 1 ? "" : "s",
                                       fmt::join(m.parameters, ", "),
                                       fmt::join(std::vector<py::ssize_t>(theta.shape(), theta.shape() + theta.ndim()), ", ")));
  std::vector<double> v(theta.data(), theta.data() + theta.size());
  for (std::size_t d = 0; d < v.size(); ++d)
    if (!std::isfinite(v[d]))
      throw lode::UsageError(fmt::format("{}: parameter '{}' of model '{}' is {}", what, m.parameters[d], m.name, v[d]));
  return v;
}

py::dict model_dict(const lode::Model& m) {
  py::dict d;
  d["name"] = m.name;
  d["description"] = m.description;
  d["parameters"] = m.parameters;
  d["observables"] = m.observables;
  d["reference"] = m.reference;
  py::dict prior;
  prior["description"] = m.prior.description;
  prior["range"] = m.prior.range;
  d["prior"] = prior;
  const lode::Capabilities c = m.capabilities();
  py::dict caps;
  caps["gold"] = c.gold;
  caps["exact_likelihood"] = c.exact_likelihood;
  caps["prior_sample"] = c.prior_sample;
  caps["prior_density"] = c.prior_density;
  caps["prior_gradient"] = c.prior_gradient;
  d["capabilities"] = caps;
  return d;
}

// Events first.. of stream `seed`, event first+i at θ_i (one point for all, or one per event),
// split over `threads` threads in contiguous blocks (the rows do not depend on it).
Array simulate(const std::string& name, const Array& theta, py::object n_obj, std::uint64_t seed,
               std::uint64_t first_event, unsigned threads) {
  const lode::Model& m = model_named(name);
  const std::size_t dim = m.parameters.size(), nx = m.observables.size();
  std::vector<double> thetas;
  std::size_t n = 0;
  bool per_event = false;
  if (theta.ndim() == 2) {
    if (static_cast<std::size_t>(theta.shape(1)) != dim)
      throw lode::UsageError(fmt::format("theta: model '{}' has {} parameter{} ({}); an array of one point per event "
                                         "has shape (n, {}), got ({}, {})",
                                         m.name, dim, dim == 1 ? "" : "s", fmt::join(m.parameters, ", "), dim,
                                         theta.shape(0), theta.shape(1)));
    n = static_cast<std::size_t>(theta.shape(0));
    if (!n_obj.is_none() && n_obj.cast<std::size_t>() != n)
      throw lode::UsageError(fmt::format("n = {}: theta has {} rows (one point per event); leave n out or make them "
                                         "agree", n_obj.cast<std::size_t>(), n));
    thetas.assign(theta.data(), theta.data() + theta.size());
    for (std::size_t i = 0; i < thetas.size(); ++i)
      if (!std::isfinite(thetas[i]))
        throw lode::UsageError(fmt::format("theta[{}, {}]: parameter '{}' of model '{}' is {}", i / dim, i % dim,
                                           m.parameters[i % dim], m.name, thetas[i]));
    per_event = true;
  } else {
    thetas = point(m, theta, "theta");
    if (n_obj.is_none()) throw lode::UsageError("n: the number of events is needed with one parameter point");
    const long long nn = n_obj.cast<long long>();
    if (nn < 1) throw lode::UsageError(fmt::format("n = {}: give at least 1 event", nn));
    n = static_cast<std::size_t>(nn);
  }
  if (threads < 1) throw lode::UsageError("threads: give at least 1");
  Array out({n, nx});
  double* o = out.mutable_data();
  std::exception_ptr error;
  std::size_t error_row = n;
  {
    py::gil_scoped_release release;
    const unsigned T = static_cast<unsigned>(std::min<std::size_t>(threads, n));
    std::vector<std::thread> pool;
    std::vector<std::exception_ptr> errors(T);
    std::vector<std::size_t> rows(T, n);
    const auto work = [&](unsigned t) {
      lode::Simulator sim(m);
      const std::size_t from = n * t / T, to = n * (t + 1) / T;
      for (std::size_t i = from; i < to; ++i) {
        try {
          const std::span<const double> th(thetas.data() + (per_event ? i * dim : 0), dim);
          const std::vector<double>& x = sim(th, seed, first_event + i);
          if (x.size() != nx)
            throw lode::RunError(fmt::format("model '{}', seed {}, event {}", m.name, seed, first_event + i), "",
                                 fmt::format("x has {} entries, the model declares {} observables", x.size(), nx));
          std::copy(x.begin(), x.end(), o + i * nx);
        } catch (...) {
          errors[t] = std::current_exception();
          rows[t] = i;
          return;
        }
      }
    };
    for (unsigned t = 1; t < T; ++t) pool.emplace_back(work, t);
    work(0);
    for (std::thread& th : pool) th.join();
    for (unsigned t = 0; t < T; ++t)
      if (errors[t] && rows[t] < error_row) error = errors[t], error_row = rows[t];
  }
  if (error) std::rethrow_exception(error);
  return out;
}

lode::mining::ThetaSpec spec_of(const lode::Model& m, const char* option, py::handle v) {
  if (v.is_none()) throw lode::UsageError(fmt::format("{}: required", option));
  if (py::isinstance<py::str>(v)) return lode::mining::parse_theta_spec(m, option, v.cast<std::string>());
  const Array a = py::cast<Array>(v);
  return lode::mining::ThetaSpec::at(point(m, a, option));
}

// The mining job of `lode mine`, in memory (a dict of arrays, rows in event order, skipped
// events left out) or into a dataset directory (`out`; returns its path).
py::object mine(const std::string& name, const std::string& purpose, py::object theta0, py::object theta1,
                py::object theta, std::uint64_t n, std::uint64_t seed, unsigned threads, std::optional<std::uint64_t> shard_size,
                double allow_skips, py::object out, bool resume, const std::string& x_dtype) {
  namespace mining = lode::mining;
  const lode::Model& m = model_named(name);
  mining::MiningJob job;
  job.model = &m;
  const auto p = lode::schema::find_purpose(purpose);
  if (!p) throw lode::UsageError(fmt::format("for_='{}': give ratio, local, density or plain", purpose));
  job.purpose = *p;
  if (lode::schema::needs_gold(job.purpose) && !m.capabilities().gold)
    throw lode::UsageError(fmt::format("for_='{}': model '{}' offers no gold (lode.models() says which do); use "
                                       "for_='plain' with theta=...",
                                       purpose, m.name));
  if (job.purpose == lode::schema::Purpose::ratio) {
    if (!theta.is_none()) throw lode::UsageError("theta: not used with for_='ratio' (give theta0 and theta1)");
    job.theta0 = spec_of(m, "theta0", theta0);
    job.theta1 = spec_of(m, "theta1", theta1);
  } else {
    if (!theta0.is_none() || !theta1.is_none())
      throw lode::UsageError(fmt::format("theta0/theta1: not used with for_='{}' (give theta)", purpose));
    job.theta0 = spec_of(m, "theta", theta);
  }
  if (n < 1) throw lode::UsageError("n: give at least 1 event");
  job.events = n;
  job.seed = seed;
  if (shard_size && *shard_size == 0) throw lode::UsageError("shard_size: give at least 1 event per shard");
  job.shard_size = shard_size ? *shard_size : mining::MiningJob::default_shard_size(n);
  job.resume = resume;
  if (x_dtype == "auto") job.x_float32 = mining::image_shape(m.observables).has_value();
  else if (x_dtype == "float32" || x_dtype == "float64") job.x_float32 = x_dtype == "float32";
  else throw lode::UsageError(fmt::format("x_dtype='{}': give 'auto', 'float32' or 'float64'", x_dtype));
  const unsigned T = mining::checked_threads("threads", threads);
  if (!out.is_none()) {
    job.out = out.cast<std::string>();
    mining::MiningResult r;
    {
      py::gil_scoped_release release;
      mining::ThreadScheduler scheduler(T);
      r = mining::mine(job, scheduler);
    }
    const std::string problem = mining::skip_problem(job, r, allow_skips);
    if (!problem.empty()) throw lode::Error(problem + " (raise allow_skips to accept it)");
    return py::str(job.out.string());
  }
  job.out = "(in memory)";
  job.check();
  const std::vector<mining::ArrayLayout> layout = job.arrays();
  const std::uint64_t chunks = job.shards();
  std::vector<mining::ShardResult> results(chunks);
  {
    py::gil_scoped_release release;
    mining::ThreadScheduler scheduler(T);
    std::vector<std::unique_ptr<mining::ShardMiner>> miners(scheduler.workers());
    scheduler.run(chunks, [&](std::size_t k, unsigned w) {
      if (!miners[w]) miners[w] = std::make_unique<mining::ShardMiner>(job);
      miners[w]->mine(job.first(k), job.end(k), results[k], {&scheduler.stopping(), nullptr});
    });
  }
  std::uint64_t rows = 0, skipped = 0;
  for (const auto& r : results) rows += r.rows, skipped += r.skipped.size();
  if (job.strict && skipped) throw lode::Error("a strict job skipped events (a bug)");
  const double fraction = static_cast<double>(skipped) / static_cast<double>(n);
  if (skipped > 0 && (rows == 0 || fraction > allow_skips)) {
    std::string first;
    for (const auto& r : results)
      if (!r.skipped.empty()) {
        first = fmt::format("; the first: event {}: {}", r.skipped.front().event, r.skipped.front().reason);
        break;
      }
    throw lode::Error(fmt::format("model '{}': {} of {} events were skipped ({:.3g}%{}){}: the rows would be a biased "
                                  "sample; pass allow_skips={:.3g} (or more) to accept them",
                                  m.name, skipped, n, 100 * fraction, rows == 0 ? ", no row at all" : "", first,
                                  std::min(1.0, fraction)));
  }
  py::dict d;
  for (std::size_t a = 0; a < layout.size(); ++a) {
    Array arr({static_cast<std::size_t>(rows), layout[a].width});
    double* o = arr.mutable_data();
    for (const auto& r : results) o = std::copy(r.arrays[a].begin(), r.arrays[a].end(), o);
    d[py::str(lode::schema::info(layout[a].column).name)] = arr;
  }
  return d;
}

py::object trace(const std::string& name, const Array& theta, std::uint64_t seed, std::uint64_t event,
                 const std::vector<Array>& at) {
  const lode::Model& m = model_named(name);
  const std::vector<double> th = point(m, theta, "theta");
  std::vector<std::vector<double>> points;
  for (const Array& a : at) points.push_back(point(m, a, "at"));
  lode::GoldMiner miner(m, lode::GoldOptions{.detailed = true});
  const lode::Gold& g = miner(th, seed, event, points);
  return to_python(lode::mining::trace_json(m, th, seed, event, points, g));
}

// Gen's generate: a run with the choices named in `constraints` (address -> value(s)) fixed.
py::dict generate(const std::string& name, const Array& theta, const py::dict& constraints, std::uint64_t seed,
                  std::uint64_t event) {
  const lode::Model& m = model_named(name);
  const std::vector<double> th = point(m, theta, "theta");
  lode::ChoiceMap c;
  for (const auto& [key, value] : constraints) {
    const Array v = py::cast<Array>(value);
    c[py::cast<std::string>(key)] = std::vector<double>(v.data(), v.data() + v.size());
  }
  lode::Generated g;
  {
    py::gil_scoped_release release;
    g = lode::generate(m, th, c, seed, event);
  }
  py::list choices;
  for (const lode::Choice& ch : g.trace.choices) {
    py::dict d;
    d["address"] = ch.address.str();
    d["kind"] = lode::to_string(ch.kind);
    const auto v = g.trace.value(ch);
    d["value"] = v.size() == 1 ? py::cast(v[0]) : py::cast(std::vector<double>(v.begin(), v.end()));
    d["log_p"] = ch.log_p;
    choices.append(d);
  }
  py::dict out;
  out["x"] = Array(static_cast<py::ssize_t>(g.x.size()), g.x.data());
  out["log_p"] = g.log_p;
  out["weight"] = g.weight;
  out["score"] = Array(static_cast<py::ssize_t>(g.score.size()), g.score.data());
  out["weight_score"] = Array(static_cast<py::ssize_t>(g.weight_score.size()), g.weight_score.data());
  out["choices"] = choices;
  return out;
}

py::object check(const std::string& name, py::object theta, std::uint64_t n, std::uint64_t seed,
                 const std::vector<Array>& at) {
  const lode::Model& m = model_named(name);
  const std::vector<double> th = theta.is_none() ? m.reference.at(0) : point(m, py::cast<Array>(theta), "theta");
  lode::mining::GoldCheckOptions options;
  options.seed = seed;
  options.events = n;
  for (const Array& a : at) options.at.push_back(point(m, a, "at"));
  if (at.empty() && m.reference.size() >= 2) options.at.push_back(m.reference[1]);
  lode::mining::GoldCheck c;
  {
    py::gil_scoped_release release;
    c = lode::mining::check_gold(m, th, options);
  }
  return to_python(lode::mining::gold_check_json(m, th, options, c));
}

// log p(x_i|θ) of the model's exact likelihood per row (and, with score, ∂/∂θ per row).
py::object exact_log_likelihood(const std::string& name, const Array& x, const Array& theta, bool score) {
  const lode::Model& m = model_named(name);
  if (!m.exact_log_likelihood)
    throw lode::UsageError(fmt::format("model '{}' has no exact likelihood (lode.models() says which do)", m.name));
  const std::vector<double> th = point(m, theta, "theta");
  const std::size_t nx = m.observables.size(), dim = th.size();
  if (!((x.ndim() == 2 && static_cast<std::size_t>(x.shape(1)) == nx) ||
        (x.ndim() == 1 && static_cast<std::size_t>(x.shape(0)) == nx)))
    throw lode::UsageError(fmt::format("x: model '{}' has {} observable{}; give an array of shape (n, {})", m.name, nx,
                                       nx == 1 ? "" : "s", nx));
  const std::size_t n = x.ndim() == 2 ? static_cast<std::size_t>(x.shape(0)) : 1;
  Array lp(static_cast<py::ssize_t>(n));
  Array grad({n, dim});
  double* l = lp.mutable_data();
  double* g = grad.mutable_data();
  {
    py::gil_scoped_release release;
    for (std::size_t i = 0; i < n; ++i)
      l[i] = m.exact_log_likelihood({x.data() + i * nx, nx}, th, score ? g + i * dim : nullptr);
  }
  if (score) return py::make_tuple(lp, grad);
  return lp;
}

}  // namespace

PYBIND11_MODULE(_core, mod) {
  mod.doc() = "lode's C++ simulators with gold, in-process (docs/python.md)";
  // lode.LodeError (a RuntimeError) for every error of lode; lode.UsageError, for bad
  // arguments (unknown model, wrong shape, NaN), is also a ValueError.
  static py::exception<lode::Error> lode_error(mod, "LodeError", PyExc_RuntimeError);
  static PyObject* usage_error = PyErr_NewException("lode._core.UsageError",
                                                    py::make_tuple(lode_error, py::handle(PyExc_ValueError)).ptr(), nullptr);
  mod.attr("UsageError") = py::handle(usage_error);
  lode::python::translate_errors(lode_error.ptr(), usage_error);
  mod.def("models", [] {
    py::list l;
    for (const lode::Model* m : lode::Registry::global().all()) l.append(model_dict(*m));
    return l;
  }, "Every registered model: name, description, parameters, observables, reference points, prior, capabilities");
  mod.def("model", [](const std::string& name) { return model_dict(model_named(name)); }, py::arg("name"),
          "One model's description (as in models())");
  mod.def("load_plugin", [](const std::string& path) { lode::load_plugin(path); }, py::arg("path"),
          "Load a shared library that registers models (lode --plugin)");
  mod.def("simulate", &simulate, py::arg("model"), py::arg("theta"), py::arg("n") = py::none(), py::arg("seed") = 1,
          py::arg("first_event") = 0, py::arg("threads") = 1,
          "x of events first_event.. of stream seed: (n, dim x) float64. theta: one point (give n) or one point per "
          "event, shape (n, dim theta). The same rows as `lode simulate` for the same seed, event and theta.");
  mod.def("mine", &mine, py::arg("model"), py::arg("for_"), py::arg("theta0") = py::none(),
          py::arg("theta1") = py::none(), py::arg("theta") = py::none(), py::arg("n") = 1000, py::arg("seed") = 1,
          py::arg("threads") = 1, py::arg("shard_size") = py::none(), py::arg("allow_skips") = 0.0,
          py::arg("out") = py::none(), py::arg("resume") = false, py::arg("x_dtype") = "auto",
          "Mine n events with their gold (lode mine): a dict of arrays (x, theta0, theta1, y, r_xz, t_xz0, t_xz1 for "
          "ratio; x, theta, t_xz for local and density; x, theta for plain; float64), or with out=DIR a dataset "
          "directory (returns DIR; x.npy float32 for an image model unless x_dtype='float64', as lode mine --x-dtype). Specs: a point (list/array) or text ('prior', 'uniform:-1..1', 'grid:-1..1:5').");
  mod.def("exact_log_likelihood", &exact_log_likelihood, py::arg("model"), py::arg("x"), py::arg("theta"),
          py::arg("score") = false,
          "log p(x_i | theta) of the model's exact likelihood per row (n,); with score=True also the score (n, dim "
          "theta): (log_p, score). The values of lode evaluate --exact");
  mod.def("trace", &trace, py::arg("model"), py::arg("theta"), py::arg("seed") = 1, py::arg("event") = 0,
          py::arg("at") = std::vector<Array>{},
          "One run with its gold (lode trace --json): choices with addresses, values, log p and scores; x, log p, "
          "score and the log ratios to the points `at`");
  mod.def("generate", &generate, py::arg("model"), py::arg("theta"), py::arg("constraints"), py::arg("seed") = 1,
          py::arg("event") = 0,
          "One run at theta with the samples and observes named in constraints ({address: value or values}) fixed "
          "to those values and the rest drawn from stream (seed, event) (Gen's generate): x, log_p, weight (the "
          "constrained choices' log p), score, weight_score and every choice (address, kind, value, log_p). "
          "Conditioning on data: constrain the observes; every choice of a trace: log_p is its log p at theta");
  mod.def("check", &check, py::arg("model"), py::arg("theta") = py::none(), py::arg("n") = 10000,
          py::arg("seed") = 1, py::arg("at") = std::vector<Array>{},
          "The gold checks of lode check --json: finite-difference scores, E[t] = 0, E[r] = 1");
}
