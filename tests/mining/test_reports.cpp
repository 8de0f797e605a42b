// The text reports of lode::mining, compared with what the old `lode` printed for the same
// command (the expected texts were captured from the command line before the reports moved
// here): gold_check_text (lode check), trace_text (lode trace), diff_text (lode trace --diff),
// trace_stats_text (lode trace --stats), pending_text / step_text (lode step), demo_event_text
// and gold_identities_text (lode demo), mining_summary_text (lode mine).
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "lode/driver.hpp"
#include "lode/mining/gold_check.hpp"
#include "lode/mining/job_text.hpp"
#include "lode/mining/trace_diff.hpp"
#include "lode/mining/trace_stats.hpp"
#include "lode/mining/trace_text.hpp"

using namespace lode::mining;

namespace {

const lode::Model& model(const char* name) { return lode::Registry::global().get(name); }

// Everything after the first line (the first line of lode demo's identities has a timing).
std::string tail(const std::string& s) { return s.substr(s.find('\n') + 1); }

}  // namespace

TEST_CASE("gold_check_text is lode check's report", "[mining][report]") {
  const lode::Model& galton = model("galton");
  GoldCheckOptions options;  // lode check galton -n 2000
  options.events = 2000;
  options.at = {galton.reference[1]};
  const std::vector<double> theta = galton.reference[0];
  CHECK(gold_check_text(galton, theta, options, check_gold(galton, theta, options)) == R"TXT(lode check galton at theta = -0.8, seed 1, 2000 events

(a) joint score vs 5-point finite differences of replayed log p: 100 events, 100 comparisons, 0 failed, max |t - fd| / tolerance = 4.22e-06  ok

check                  events       mean       SE  |dev|/SE  result
(b) E[t] = 0  theta      2000  -0.047322   0.0349      1.36  ok
(c) E[r] = 1  at -0.6    2000    1.00693  0.00783     0.885  ok

failed events (RunError): 0

PASSED
)TXT");

  const lode::Model& shifted = model("test_shifted_output");  // lode check test_shifted_output -n 200
  options.events = 200;
  options.at = {shifted.reference[1]};
  const std::vector<double> at = shifted.reference[0];
  CHECK(gold_check_text(shifted, at, options, check_gold(shifted, at, options)) == R"TXT(lode check test_shifted_output at theta = 0.3, seed 1, 200 events

gold refused: output 'x' depends on theta once the random choices are fixed (d/dtheta[0] = 1); its density needs a Jacobian the trace does not contain: draw it with observe() from a distribution (e.g. with its measurement noise)

FAILED
)TXT");
}

TEST_CASE("trace_text is lode trace's report", "[mining][report]") {
  const lode::Model& veto = model("test_veto");
  const std::vector<double> theta = veto.reference[0];
  const std::vector<std::vector<double>> at = {{0.5}};
  lode::GoldMiner miner(veto, lode::GoldOptions{.detailed = true});
  // lode trace test_veto --at 0.5
  CHECK(trace_text(veto, theta, 1, 0, at, miner(theta, 1, 0, at)) == R"TXT(test_veto at theta = 0.3, seed 1, event 0: 3 choices

#  address  kind     distribution                         value      log p  dlogp/dtheta   running
0  z        sample   Normal(mu=0.3, sigma=1)          -0.138675   -1.01516     -0.438675  -1.01516
1  veto     factor                                            0          0             0  -1.01516
2  x        observe  Normal(mu=-0.138675, sigma=0.5)   -0.39686  -0.359111             0  -1.37427

x                  = [-0.39686049290822095]
log p(x,z|theta)   = -1.3742671743351411
score t(x,z|theta) = [-0.4386751461507515]
at 0.5: log p(x,z|0.5) = -1.4820022035652918, log r(x,z|theta,0.5) = 0.10773502923015066
)TXT");
  // lode trace test_veto --event 1 --at 0.5: log p = -inf, so log r is not a number
  CHECK(trace_text(veto, theta, 1, 1, at, miner(theta, 1, 1, at)) == R"TXT(test_veto at theta = 0.3, seed 1, event 1: 3 choices

#  address  kind     distribution                      value     log p  dlogp/dtheta   running
0  z        sample   Normal(mu=0.3, sigma=1)         1.19744  -1.32164      0.897445  -1.32164
1  veto     factor                                      -inf      -inf             0      -inf
2  x        observe  Normal(mu=1.19744, sigma=0.5)  0.569175  -1.01524             0      -inf

x                  = [0.5691747950201684]
log p(x,z|theta)   = -inf
score t(x,z|theta) = [0.8974446665924707]
at 0.5: log p(x,z|0.5) = -inf, log r = -nan (a recorded value has zero density at this point)
)TXT");
}

TEST_CASE("diff_text is lode trace --diff's report", "[mining][report]") {
  const lode::Model& sir = model("sir");  // lode trace sir --diff --theta2 0.5,0.2
  const RunDiff d = diff_runs(sir, {sir.reference[0], 1, 0}, {{0.5, 0.2}, 1, 0});
  CHECK(diff_text(sir, d) == R"TXT(sir: run A at theta = (0.61479264, 0.19172086), seed 1, event 0 (10 choices)
     run B at theta = (0.5, 0.2), seed 1, event 0 (10 choices)

the runs diverge at choice 2 'x/2': value 296 in run A, 17 in run B

#A  #B  address  value A  value B       log p A       log p B  share of log r
 0   0  x/0            0        0        -0.001        -0.001               0
 1   1  x/1            0        0      -1.32622     -0.163962        -1.16226
 2   2  x/2          296       17      -5.05253      -3.81489        -1.23763  values differ, <- runs diverge
 3   3  x/3           48      202      -2.86892      -3.49444        0.625526  values differ
 4   4  x/4            1       23      -1.89898      -2.77988        0.880896  values differ
 5   5  x/5            1        0       -1.8569      -2.31013        0.453232  values differ
 6   6  x/6            0        0    -0.0118489     -0.192324        0.180475
 7   7  x/7            0        0  -0.000744633    -0.0159879       0.0152433
 8   8  x/8            0        0  -4.67957e-05   -0.00132891      0.00128212
 9   9  x/9            0        0  -2.94083e-06  -0.000110458     0.000107517

x A = [0, 0, 296, 48, 1, 1, 0, 0, 0, 0], x B = [0, 0, 17, 202, 23, 0, 0, 0, 0, 0]
log p A = -13.0171870301161, log p B = -12.774058221914876
log p A - log p B (different z: not a joint ratio) = -0.24312880820122373 (the sum of the shares)
)TXT");
}

TEST_CASE("trace_stats_text is lode trace --stats's report", "[mining][report]") {
  const lode::Model& veto = model("test_veto");  // lode trace test_veto --stats -n 100
  const std::vector<double> theta = veto.reference[0], at = veto.reference[1];
  CHECK(trace_stats_text(veto, theta, at, 1, trace_stats(veto, theta, at, 1, 100)) == R"TXT(test_veto: events 0..99 of seed 1 at theta = 0.3, log r against theta' = 0.5
100 events ran, 0 failed

choices per event (every record: sample, observe, factor, output):
  min 3, mean 3, max 3; quantiles 5% 3, 50% 3, 95% 3

addresses by name:
  name  events  per event
  z        100          1
  veto     100          1
  x        100          1

addresses (3 distinct):
  address  events  per event
  z           100          1
  veto        100          1
  x           100          1

variance of log r(x,z|theta,theta') by address name: per-event sums of log p(theta) - log p(theta') over 83 events (17 excluded: log r not finite); share = Cov(name, log r) / Var(log r)
  name    variance  share
  z      0.0256889      1
  veto           0      0
  x              0      0
  total  0.0256889      1

variance of the score t_0 = dlogp/dtheta by address name (100 events)
  name   variance  share
  z       0.97248      1
  veto          0      0
  x             0      0
  total   0.97248      1
)TXT");
}

TEST_CASE("pending_text and step_text are lode step's", "[mining][report]") {
  const lode::Model& mixture = model("gaussian_mixture");  // lode step gaussian_mixture < /dev/null
  lode::Stepper stepper(mixture, mixture.reference[0], 1, 0);
  CHECK(pending_text(stepper) == "[0] component  sample  Categorical(probs=[0.5, 0.5])");
  stepper.finish();
  CHECK(step_text(mixture, stepper, {}) == R"TXT(
run finished: 2 choices (0 forced)

#  address    kind     distribution                                                              value      log p  dlogp/dtheta1  dlogp/dtheta2    running
0  component  sample   Categorical(probs=[0.5, 0.5])                                                 1  -0.693147              0              0  -0.693147
1  x          observe  MultivariateNormalDiag(mean=[0.5, -0.25], sd=[0.1, 0.1])  [0.579933, -0.301006]    2.31775        7.99327       -5.10063     1.6246

x                  = [0.5799326790834365, -0.30100626241967265]
log p(x,z|theta)   = 1.6246023394447926
score t(x,z|theta) = [7.993267908343649, -5.100626241967265]
)TXT");
}

TEST_CASE("demo_event_text and gold_identities_text are lode demo's", "[mining][report]") {
  const lode::Model& galton = model("galton");  // lode demo -n 2000
  const std::vector<double> th0 = galton.reference[0], th1 = galton.reference[1];
  const std::vector<std::vector<double>> at = {th1};
  lode::GoldMiner one(galton, lode::GoldOptions{.detailed = true});
  CHECK(demo_event_text(galton, th0, th1, 1, one(th0, 1, 0, at)) == R"TXT(Event 0 of seed 1 at theta0: 21 choices, x = [22]
  log p(x,z|theta0)        = -10.275969875173063
  joint score t(x,z|theta0) = [-1.4386017896649232]
  log r(x,z|theta0,theta1)  = 0.3532105117201194
  (lode trace galton --theta -0.8 --seed 1 --event 0 --at -0.6 shows every choice)

)TXT");
  const GoldIdentities id = mine_gold_identities(galton, th0, th1, 1, 2000);
  const std::string text = gold_identities_text(galton, th0, th1, 2000, id);
  CHECK(text.starts_with("Mined 2000 events at theta1 with score and ratio in "));
  CHECK(tail(text) == R"TXT(
  identity                   estimate  ± MC error  expected  deviation
  E[t_theta(x,z|theta1)]   -0.0366442       0.0393         0  0.9 sigma (ok)
  E[r(x,z|theta0,theta1)]     1.00693      0.00783         1  0.9 sigma (ok)

The joint ratio is an unbiased label of the likelihood ratio: mean of r per x vs exact
     x  events  mean r(x,z)  ± MC error  exact r(x)  deviation
  [12]     143     0.871653       0.0115       0.879  0.6 sigma (ok)
  [13]     119     0.793011      0.00924    0.795877  0.3 sigma (ok)
  [14]     152     0.738099      0.00805    0.747572  1.2 sigma (ok)
  [15]     171     0.725326      0.00802    0.734187  1.1 sigma (ok)
  [16]     172     0.754559      0.00799    0.755473  0.1 sigma (ok)
  [17]     164      0.82212       0.0114    0.810902  1.0 sigma (ok)
  [18]     190     0.901358       0.0132    0.899785  0.1 sigma (ok)
  [19]     143      1.00311       0.0181     1.02099  1.0 sigma (ok)
  [20]     151      1.18311       0.0226     1.17186  0.5 sigma (ok)

Fisher information at theta1: joint E[t^2] = 3.08947 >= E[t(x)^2] = 2.11199 (what x alone can tell)
)TXT");
}

TEST_CASE("mining_summary_text is lode mine's summary", "[mining][report]") {
  MiningJob job;
  job.model = &model("galton");
  job.purpose = lode::schema::Purpose::ratio;
  job.events = 3000;
  job.seed = 7;
  job.out = "data";
  MiningResult r;
  r.rows = 2998;
  r.skipped = 2;
  r.seconds = 1.5;
  CHECK(mining_summary_text(job, r, 2) ==
        "lode mine: 3000 events of galton --for ratio (seed 7): 2998 rows, 2 skipped; 1.50 s, 2000 events/s on 2 "
        "threads -> data\n");
  job.purpose = lode::schema::Purpose::density;
  r.resumed_events = 1000;
  r.seconds = 0.5;
  CHECK(mining_summary_text(job, r, 1) ==
        "lode mine: 3000 events of galton --for density (seed 7): 2998 rows, 2 skipped, 1000 events resumed; 0.50 s, "
        "4000 events/s on 1 thread -> data\n");
  r.already_complete = true;
  CHECK(mining_summary_text(job, r, 1) == "lode mine: 'data' is already complete (2998 rows); nothing to do\n");
}
