// lode neyman / lode limits / lode calibrate end to end on galton: the commands give what
// lode::inference gives with the same options (bit for bit: same toys, same sums), the belt
// is reused, a calibration file is written, read back by lode infer and lode neyman, and
// bad input is refused with messages naming it.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "lode/estimators/estimator.hpp"
#include "lode/estimators/likelihood.hpp"
#include "lode/inference/calibration.hpp"
#include "lode/inference/neyman.hpp"
#include "lode/inference/sbc.hpp"
#include "lode/mining/simulate.hpp"
#include "lode/model.hpp"
#include "lode/npy.hpp"
#include "tool_test_support.hpp"

using namespace lode_test;
namespace fs = std::filesystem;
namespace inf = lode::inference;
namespace est = lode::estimators;
using Json = nlohmann::json;

namespace {

void check_fails(const std::vector<std::string>& args, const std::string& needle) {
  const Result r = run_lode(args);
  std::string cmd = "lode";
  for (const auto& a : args) cmd += " " + a;
  INFO(cmd << "\nstderr: " << r.err);
  CHECK(r.status != 0);
  CHECK(r.err.find(needle) != std::string::npos);
  CHECK(r.err.find("terminate") == std::string::npos);
}

const lode::Model& galton() { return lode::Registry::global().get("galton"); }

inf::ToySimulator simulator() {
  return [](std::span<const double> theta, std::size_t n, std::uint64_t seed) {
    return lode::mining::simulate_events(galton(), theta, n, seed).data;
  };
}

// 100 galton events at θ = −0.7.
const std::string& observed() {
  static const std::string file = [] {
    const std::string f = scratch("obs.npy");
    require_ok(run_lode({"simulate", "galton", "--theta", "-0.7", "-n", "100", "--seed", "5", "--out", f}));
    return f;
  }();
  return file;
}

// A tiny RASCAL on 2000 galton rows (θ1 = −0.6), trained once.
const std::string& rascal() {
  static const std::string dir = [] {
    const std::string data = scratch("galton-data"), model = scratch("rascal");
    require_ok(run_lode({"mine", "galton", "--for", "ratio", "--theta0", "uniform:-1..-0.4", "--theta1", "-0.6", "-n",
                         "2000", "--seed", "4", "--out", data}));
    require_ok(run_lode({"train", "rascal", "--data", data, "--out", model, "--epochs", "3", "--hidden", "16,16",
                         "--seed", "3", "-q"}));
    return model;
  }();
  return dir;
}

std::vector<double> numbers(const Json& a) {
  std::vector<double> v;
  for (const Json& x : a) v.push_back(x.is_null() ? INFINITY : x.get<double>());
  return v;
}

}  // namespace

TEST_CASE("lode neyman --exact: the library's construction, a reusable belt", "[cli][estimators][neyman]") {
  const std::string out = scratch("neyman.json"), belt = scratch("belt.json");
  const Result r = run_lode({"neyman", "--exact", "galton", "--observed", observed(), "--grid", "-1..-0.4:13",
                             "--toys", "200", "--seed", "9", "-j", "2", "--json", "--out", out, "--belt-out", belt});
  require_ok(r);
  const Json j = Json::parse(r.out);
  CHECK(Json::parse(read_text(out)) == j);
  CHECK(j["method"] == "exact");
  CHECK(j["simulator"] == "galton");
  CHECK(j["toys"] == 200);
  CHECK(j["events_per_toy"] == 100);
  CHECK(j["simulated_events"] == 13 * 200 * 100);
  // The same construction in the library.
  const inf::Grid grid = inf::parse_grid("-1..-0.4:13");
  inf::NeymanOptions o;
  o.toys = 200;
  o.events = 100;
  o.seed = 9;
  const inf::EventLikelihood f = inf::exact_event_log_likelihood(galton());
  const inf::NeymanBelt b = inf::neyman_belt(grid, f, simulator(), o);
  const inf::Observed obs = inf::read_observed(observed(), 1, "galton");
  const inf::NeymanResult lib = inf::neyman_sets(b, inf::evaluate_on_grid(grid, inf::sum_log_likelihood(f, obs)));
  for (std::size_t k = 0; k < 13; ++k) {
    CHECK(j["critical_values"]["68"][k].get<double>() == b.critical[k][0]);
    CHECK(j["critical_values"]["95"][k].get<double>() == b.critical[k][1]);
    CHECK(j["p_values"][k].get<double>() == lib.p_value[k]);
  }
  REQUIRE(lib.sets[0].intervals.size() == 1);
  CHECK(j["neyman"]["intervals"]["68"][0][0].get<double>() == lib.sets[0].intervals[0].lo);
  CHECK(j["neyman"]["intervals"]["95"][0][1].get<double>() == lib.sets[1].intervals[0].hi);
  // lode infer's fields: the same q as lode infer.
  const Result infer = run_lode({"infer", "--exact", "galton", "--observed", observed(), "--grid", "-1..-0.4:13", "--json"});
  require_ok(infer);
  const Json ji = Json::parse(infer.out);
  CHECK(ji["q"] == j["q"]);
  CHECK(ji["intervals"] == j["intervals"]);
  // The belt reused: no simulation, the same sets.
  const Result again = run_lode({"neyman", "--exact", "galton", "--observed", observed(), "--grid", "-1..-0.4:13",
                                 "--belt", belt, "--json"});
  require_ok(again);
  const Json ja = Json::parse(again.out);
  CHECK(ja["critical_values"] == j["critical_values"]);
  CHECK(ja["neyman"] == j["neyman"]);
  CHECK(ja["p_values"] == j["p_values"]);
  CHECK(ja["belt"] == belt);
  // Text output names both constructions.
  const Result text = run_lode({"neyman", "--exact", "galton", "--observed", observed(), "--grid", "-1..-0.4:13",
                                "--belt", belt});
  require_ok(text);
  CHECK(text.out.find("Wilks (asymptotic):") != std::string::npos);
  CHECK(text.out.find("Neyman construction:\n68.27% CL: theta in [") != std::string::npos);
  // The belt drawn: a PNG (gnuplot), the results unchanged.
  const std::string png = scratch("belt.png");
  const Result drawn = run_lode({"neyman", "--exact", "galton", "--observed", observed(), "--grid", "-1..-0.4:13",
                                 "--belt", belt, "--json", "--plot", png});
  require_ok(drawn);
  CHECK(Json::parse(drawn.out)["neyman"] == j["neyman"]);
  const std::string image = read_text(png);
  CHECK(image.size() > 5000);
  CHECK(image.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0);
  check_fails({"neyman", "--exact", "galton", "--observed", observed(), "--grid", "-1..-0.4:13", "--toys", "200",
               "--max-failed", "1.5"},
              "--max-failed '1.5': one fraction in [0, 1)");
  check_fails({"neyman", "--exact", "galton", "--observed", observed(), "--grid", "-1..-0.4:13", "--belt", belt,
               "--max-failed", "0.1"},
              "--max-failed: the toys come from --belt");
  const std::string moons = scratch("moons.npy");
  require_ok(run_lode({"simulate", "two_moons", "--theta", "0.1,0.2", "-n", "1", "--out", moons}));
  check_fails({"neyman", "--exact", "two_moons", "--observed", moons, "--grid", "-1..1:5,-1..1:5", "--toys", "200",
               "--plot", scratch("b2.png")},
              "--plot: the belt is drawn for one parameter; this grid has 2");

  check_fails({"neyman", "--exact", "galton", "--observed", observed(), "--grid", "-1..-0.5:13", "--belt", belt},
              "made on grid '-1..-0.4:13', not '-1..-0.5:13'");
  check_fails({"neyman", "--exact", "galton", "--observed", observed(), "--grid", "-1..-0.4:13", "--toys", "100"},
              "--toys 100: too few for the 95% level (the critical value needs K (1 - CL) >= 10: at least 200 toys)");
  check_fails({"neyman", "--exact", "galton", "--observed", observed(), "--grid", "-1..-0.4"}, "--grid '-1..-0.4'");
  check_fails({"neyman", "--exact", "galton", "--observed", observed(), "--grid", "-1..-0.4:5,0..1:3", "--toys", "200"},
              "--grid '-1..-0.4:5,0..1:3': 2 axes, but model 'galton' has 1 parameter");
  check_fails({"neyman", "--exact", "galton", "--observed", observed(), "--grid", "-1..-0.4:13"}, "--toys: required");
  check_fails({"neyman", "--exact", "galton", "--observed", observed(), "--grid", "-1..-0.4:13", "--toys", "200",
               "--simulator", "gaussian_linear"},
              "--simulator 'gaussian_linear'");
  check_fails({"neyman", "--exact", "galton", "--observed", observed(), "--grid", "-1..-0.4:13", "--toys", "200",
               "--calibration", belt},
              "--calibration: only used with --model");
}

TEST_CASE("lode limits --exact: Asimov and toys as in the library", "[cli][estimators][limits]") {
  const Result r = run_lode({"limits", "--expected", "-0.7", "--exact", "galton", "--grid", "-1..-0.4:31", "--events",
                             "100", "--toys", "40", "--asimov", "--asimov-events", "20000", "--seed", "2", "--json"});
  require_ok(r);
  const Json j = Json::parse(r.out);
  inf::ExpectedOptions o;
  o.events = 100;
  o.toys = 40;
  o.asimov_sample = 20000;
  o.seed = 2;
  const inf::Grid grid = inf::parse_grid("-1..-0.4:31");
  const inf::ExpectedLimits e =
      inf::expected_limits(grid, std::vector<double>{-0.7}, inf::exact_event_log_likelihood(galton()), simulator(), o);
  CHECK(numbers(j["asimov"]["q"]) == e.asimov_q);
  const auto& a68 = j["asimov"]["sets"]["68"]["intervals"][0];
  CHECK(a68[0].get<double>() == e.asimov_sets[0].intervals[0].lo);
  CHECK(a68[1].get<double>() == e.asimov_sets[0].intervals[0].hi);
  // The expected 68% set contains the truth and is about ±1/sqrt(N I) wide (I ≈ 1.4 near
  // θ = −0.7: ±0.085); a loose check of the scale.
  CHECK(a68[0].get<double>() < -0.7);
  CHECK(a68[1].get<double>() > -0.7);
  CHECK(a68[1].get<double>() - a68[0].get<double>() == Approx(0.17).margin(0.05));
  CHECK(j["toys"]["bands"]["95"]["hi"][1].get<double>() == e.bands[1].hi50);
  CHECK(numbers(j["toys"]["inclusion"]["68"]) == e.inclusion[0]);
  check_fails({"limits", "--expected", "-0.7,1", "--exact", "galton", "--grid", "-1..-0.4:31", "--events", "100"},
              "--expected '-0.7,1': 2 values, but model 'galton' has 1 parameter");
  check_fails({"limits", "--expected", "-0.7", "--exact", "galton", "--grid", "-1..-0.4:31"},
              "give --events N (events per experiment) or --poisson MEAN");
  check_fails({"limits", "--expected", "-0.7", "--exact", "galton", "--grid", "-1..-0.4:31", "--events", "100",
               "--toys", "3"},
              "--toys 3: at least 5");
}

TEST_CASE("lode calibrate: a RASCAL's calibration, used by lode infer and lode neyman", "[cli][estimators][calibration]") {
  const std::string cal = scratch("cal.json");
  const Result r = run_lode({"calibrate", "--model", rascal(), "--grid", "-1..-0.4:7", "-n", "3000", "--seed", "5",
                             "--out", cal, "--json"});
  require_ok(r);
  const Json s = Json::parse(r.out);
  CHECK(s["simulator"] == "galton");
  CHECK(s["format"] == "lode-calibration");
  CHECK(s["effect"]["events"].get<int>() > 7 * 1900);
  const double before = s["effect"]["mse_before"], after = s["effect"]["mse_after"];
  INFO("MSE before " << before << ", after " << after);
  CHECK(after < before);  // 3 epochs on 2000 rows: calibration helps
  const Json file = Json::parse(read_text(cal));
  CHECK(file["points"].size() == 7);
  CHECK(file["theta1"] == std::vector<double>{-0.6});

  // lode infer --calibration: L = Σ calibrated log r, as the library computes it.
  const Result infer = run_lode({"infer", "--model", rascal(), "--observed", observed(), "--grid", "-1..-0.4:13",
                                 "--calibration", cal, "--json"});
  require_ok(infer);
  const Json ji = Json::parse(infer.out);
  CHECK(ji["calibration"] == cal);
  const est::Estimator e = est::Estimator::load(rascal());
  auto c = std::make_shared<inf::Calibration>(inf::calibration_from_json(nlohmann::ordered_json::parse(read_text(cal)), cal));
  const inf::LogLikelihood L = inf::sum_log_likelihood(
      inf::calibrated_log_ratio(c, est::ratio_event_log_likelihood(e, {-0.6}, rascal())),
      inf::read_observed(observed(), 1, "galton"));
  const inf::Grid grid = inf::parse_grid("-1..-0.4:13");
  for (std::size_t k = 0; k < 13; ++k) CHECK(ji["log_likelihood"][k].get<double>() == L(grid.point(k)));
  const Result plain = run_lode({"infer", "--model", rascal(), "--observed", observed(), "--grid", "-1..-0.4:13", "--json"});
  require_ok(plain);
  CHECK(Json::parse(plain.out)["log_likelihood"] != ji["log_likelihood"]);

  // lode neyman with the estimator, calibrated: toys from the model it was trained on.
  const Result n = run_lode({"neyman", "--model", rascal(), "--calibration", cal, "--observed", observed(), "--grid",
                             "-1..-0.4:7", "--toys", "200", "--json"});
  require_ok(n);
  const Json jn = Json::parse(n.out);
  CHECK(jn["simulator"] == "galton");
  CHECK(jn["calibration"] == cal);
  CHECK(jn["critical_values"]["95"].size() == 7);
  CHECK(jn["neyman"]["sets"]["95"].size() >= 1);

  check_fails({"calibrate", "--model", rascal(), "--grid", "-1..-0.4:7", "-n", "100", "--out", scratch("c.json"),
               "--simulator", "gaussian_linear"},
              "--simulator 'gaussian_linear'");
  check_fails({"calibrate", "--model", rascal(), "--grid", "-1..-0.4:7", "-n", "100", "--out", scratch("c.json"),
               "--bins", "1"},
              "--bins 1: at least 2");
  check_fails({"infer", "--model", rascal(), "--observed", observed(), "--grid", "-1..-0.4:13", "--calibration",
               observed()},
              "--calibration '");
  check_fails({"infer", "--exact", "galton", "--observed", observed(), "--grid", "-1..-0.4:13", "--calibration", cal},
              "--calibration: only used with --model");
}

TEST_CASE("lode posterior --calibration: MCMC on the calibrated L gives the grid posterior of that L",
          "[cli][estimators][calibration][posterior]") {
  const std::string cal = scratch("cal-post.json");
  require_ok(run_lode({"calibrate", "--model", rascal(), "--grid", "-1..-0.4:7", "-n", "3000", "--seed", "5", "--out",
                       cal}));
  const std::string post = scratch("post.npy");
  const Result r = run_lode({"posterior", "--model", rascal(), "--calibration", cal, "--observed", observed(), "-n",
                             "4000", "--seed", "2", "--out", post});
  require_ok(r);
  CHECK(r.err.find("calibrated by " + cal) != std::string::npos);
  const lode::npy::Array draws = lode::npy::read(post);
  REQUIRE(draws.shape == std::vector<std::size_t>{4000, 1});
  double m = 0, m2 = 0;
  for (double v : draws.data) m += v / 4000, m2 += v * v / 4000;
  const double sd_mcmc = std::sqrt(m2 - m * m);

  // The posterior of the same L on a fine grid, with galton's uniform prior on [−1, −0.4].
  const est::Estimator e = est::Estimator::load(rascal());
  auto c = std::make_shared<inf::Calibration>(inf::calibration_from_json(nlohmann::ordered_json::parse(read_text(cal)), cal));
  const inf::LogLikelihood L = inf::sum_log_likelihood(
      inf::calibrated_log_ratio(c, est::ratio_event_log_likelihood(e, {-0.6}, rascal())),
      inf::read_observed(observed(), 1, "galton"));
  const int n = 1201;
  std::vector<double> theta(n), logp(n);
  double top = -INFINITY;
  for (int i = 0; i < n; ++i) {
    theta[i] = -1.0 + 0.6 * i / (n - 1);
    logp[i] = L(std::vector<double>{theta[i]});
    top = std::max(top, logp[i]);
  }
  double z = 0, mean = 0, second = 0;
  for (int i = 0; i < n; ++i) {
    const double w = std::exp(logp[i] - top) * ((i == 0 || i == n - 1) ? 0.5 : 1.0);
    z += w, mean += w * theta[i], second += w * theta[i] * theta[i];
  }
  mean /= z;
  const double sd = std::sqrt(second / z - mean * mean);
  // Monte-Carlo error of the draws' mean: sd/sqrt(ESS), ESS at least a tenth of the draws.
  INFO("MCMC mean " << m << " sd " << sd_mcmc << "; grid mean " << mean << " sd " << sd);
  CHECK(std::abs(m - mean) < 5 * sd / std::sqrt(400.0));
  CHECK(std::abs(sd_mcmc - sd) < 0.15 * sd);

  // A grid that does not cover the prior is refused; so are --exact and density estimators.
  const std::string narrow = scratch("narrow.json");
  require_ok(run_lode({"calibrate", "--model", rascal(), "--grid", "-0.9..-0.5:5", "-n", "500", "--seed", "5", "--out",
                       narrow}));
  check_fails({"posterior", "--model", rascal(), "--calibration", narrow, "--observed", observed(), "-n", "400",
               "--out", scratch("p.npy")},
              "its grid covers theta in [-0.9, -0.5], but the prior of model 'galton'");
  check_fails({"posterior", "--exact", "galton", "--calibration", cal, "--observed", observed(), "-n", "400", "--out",
               scratch("p.npy")},
              "--calibration: only used with --model");
}

TEST_CASE("lode sbc --calibration: the calibrated posterior's SBC, run for run the library's", "[cli][estimators][calibration][sbc]") {
  const std::string cal = scratch("cal-sbc.json"), out = scratch("sbc-cal.json");
  require_ok(run_lode({"calibrate", "--model", rascal(), "--grid", "-1..-0.4:7", "-n", "1000", "--seed", "5", "--out",
                       cal}));
  const Result r = run_lode({"sbc", "--model", rascal(), "--calibration", cal, "-n", "30", "--draws", "40", "--events",
                             "5", "--seed", "3", "--out", out});
  INFO(r.err);
  REQUIRE((r.status == 0 || r.status == 1));  // 1: not calibrated (the report is written either way)
  const Json j = Json::parse(read_text(out));
  CHECK(j["calibration"] == cal);
  CHECK(j["source"].get<std::string>().find("calibrated by " + cal) != std::string::npos);
  CHECK(j["events"] == 5);
  REQUIRE(j["per_run"].size() == 30);
  // The same SBC through the library: θ* from galton's prior, 5 events at it, MCMC (4 chains,
  // 200 warm-up, thin 4) on Σ calibrated log r — every run's θ* and ranks equal.
  const est::Estimator e = est::Estimator::load(rascal());
  auto c = std::make_shared<inf::Calibration>(inf::calibration_from_json(nlohmann::ordered_json::parse(read_text(cal)), cal));
  const inf::EventLikelihood f = inf::calibrated_log_ratio(c, est::ratio_event_log_likelihood(e, {-0.6}, rascal()));
  inf::McmcSettings mcmc;
  mcmc.draws = 40, mcmc.chains = 4, mcmc.warmup = 200, mcmc.thin = 4;
  inf::SbcSettings s;
  s.runs = 30, s.draws = 40, s.seed = 3;
  const inf::SbcSimulate simulate = [](std::span<const double> theta, std::uint64_t seed, std::vector<double>& x) {
    x = lode::mining::simulate_events(galton(), theta, 5, seed).data;
    return x.size() == 5;
  };
  const inf::SbcResult lib = inf::run_sbc(
      galton().prior, simulate,
      inf::mcmc_sbc_posterior(
          galton().prior,
          [f](inf::Observed obs) { return inf::batch_log_likelihood(inf::sum_log_likelihood(f, std::move(obs)), 1); },
          mcmc, 1),
      s);
  for (std::size_t k = 0; k < 30; ++k) {
    CHECK(j["per_run"][k]["theta"][0].get<double>() == lib.theta_true[k]);
    CHECK(j["per_run"][k]["ranks"][0].get<std::size_t>() == lib.ranks[k]);
  }
  // Not for the exact likelihood or NPE; a grid that does not cover the prior is refused.
  check_fails({"sbc", "--exact", "galton", "--calibration", cal, "-n", "30"}, "--calibration: only used with --model");
  const std::string narrow = scratch("narrow-sbc.json");
  require_ok(run_lode({"calibrate", "--model", rascal(), "--grid", "-0.9..-0.5:5", "-n", "500", "--seed", "5", "--out",
                       narrow}));
  check_fails({"sbc", "--model", rascal(), "--calibration", narrow, "-n", "30"},
              "its grid covers theta in [-0.9, -0.5], but the prior of model 'galton'");
}
