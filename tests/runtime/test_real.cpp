// tests/runtime/test_real.cpp — the forward-mode scalar lode::Real (real.hpp, math.hpp).
//
// Every elementary function's derivative is checked against central finite differences of an
// independent double implementation (the C library, Boost.Math, or a formula written here),
// at several points; the value against the same implementation. Then mixed constant/variable
// arithmetic, and that constants carry no gradient.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <boost/math/special_functions/digamma.hpp>
#include <cmath>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "lode/math.hpp"
#include "lode/real.hpp"

namespace {

using lode::Real;

/// Central difference of f at x: step h = 1e-6·max(1, |x|). Returns the derivative estimate
/// and a tolerance: 1e-6 relative + 1e-8 absolute + the rounding error of the quotient
/// (f is computed to ~1e-15 relative; that error is divided by 2h).
struct Fd {
  double d, tol;
};
Fd central(const std::function<double(double)>& f, double x) {
  const double h = 1e-6 * std::max(1.0, std::fabs(x));
  const double xp = x + h, xm = x - h;
  const double fp = f(xp), fm = f(xm);
  const double d = (fp - fm) / (xp - xm);
  return {d, 1e-6 * std::fabs(d) + 1e-8 + 1e-15 * std::max({1.0, std::fabs(fp), std::fabs(fm)}) / h};
}

bool close(double a, double b, double rel = 1e-14) {
  if (a == b) return true;
  return std::fabs(a - b) <= rel * std::max(1.0, std::fabs(b));
}

struct Unary {
  std::string name;
  std::function<Real(const Real&)> f;    // the Real function under test
  std::function<double(double)> ref;      // an independent double implementation
  std::vector<double> points;
};

struct Binary {
  std::string name;
  std::function<Real(const Real&, const Real&)> f;
  std::function<double(double, double)> ref;
  std::vector<std::pair<double, double>> points;
};

double ref_sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

}  // namespace

TEST_CASE("Real: derivative of every unary function equals finite differences", "[real]") {
  const std::vector<Unary> fns = {
      {"unary +", [](const Real& a) { return +a; }, [](double x) { return x; }, {-2, 0, 3.5}},
      {"unary -", [](const Real& a) { return -a; }, [](double x) { return -x; }, {-2, 0, 3.5}},
      {"exp", [](const Real& a) { return exp(a); }, [](double x) { return std::exp(x); }, {-3, -0.5, 0, 1.7, 5}},
      {"expm1", [](const Real& a) { return expm1(a); }, [](double x) { return std::expm1(x); }, {-2, -1e-3, 0, 0.3, 2}},
      {"log", [](const Real& a) { return log(a); }, [](double x) { return std::log(x); }, {0.01, 0.5, 1, 7, 1e4}},
      {"log1p", [](const Real& a) { return log1p(a); }, [](double x) { return std::log1p(x); }, {-0.5, -1e-4, 0, 0.3, 10}},
      {"sqrt", [](const Real& a) { return sqrt(a); }, [](double x) { return std::sqrt(x); }, {0.04, 1, 9.5, 1e3}},
      {"cbrt", [](const Real& a) { return cbrt(a); }, [](double x) { return std::cbrt(x); }, {-8, -0.3, 0.5, 27}},
      {"pow(a, 2.5)", [](const Real& a) { return pow(a, 2.5); }, [](double x) { return std::pow(x, 2.5); }, {0.1, 1, 3}},
      {"pow(a, -1.5)", [](const Real& a) { return pow(a, -1.5); }, [](double x) { return std::pow(x, -1.5); }, {0.2, 1, 4}},
      {"pow(a, 3) int", [](const Real& a) { return pow(a, 3); }, [](double x) { return x * x * x; }, {-2, 0, 0.5, 4}},
      {"pow(a, -2) int", [](const Real& a) { return pow(a, -2); }, [](double x) { return 1 / (x * x); }, {-2, 0.5, 4}},
      {"pow(a, 0.0)", [](const Real& a) { return pow(a, 0.0); }, [](double) { return 1.0; }, {-2, 0.5, 4}},
      {"pow(2, a)", [](const Real& a) { return pow(2.0, a); }, [](double x) { return std::pow(2.0, x); }, {-3, 0, 1.5, 10}},
      {"pow(0.3, a)", [](const Real& a) { return pow(0.3, a); }, [](double x) { return std::pow(0.3, x); }, {-2, 0, 2.5}},
      {"square", [](const Real& a) { return square(a); }, [](double x) { return x * x; }, {-3, 0, 2.5}},
      {"sin", [](const Real& a) { return sin(a); }, [](double x) { return std::sin(x); }, {-2, 0, 0.7, 3}},
      {"cos", [](const Real& a) { return cos(a); }, [](double x) { return std::cos(x); }, {-2, 0, 0.7, 3}},
      {"tan", [](const Real& a) { return tan(a); }, [](double x) { return std::tan(x); }, {-1, 0, 0.3, 1.2}},
      {"atan", [](const Real& a) { return atan(a); }, [](double x) { return std::atan(x); }, {-5, 0, 0.7, 30}},
      {"sinh", [](const Real& a) { return sinh(a); }, [](double x) { return std::sinh(x); }, {-2, 0, 0.5, 3}},
      {"cosh", [](const Real& a) { return cosh(a); }, [](double x) { return std::cosh(x); }, {-2, 0, 0.5, 3}},
      {"tanh", [](const Real& a) { return tanh(a); }, [](double x) { return std::tanh(x); }, {-2, 0, 0.5, 3}},
      {"erf", [](const Real& a) { return erf(a); }, [](double x) { return std::erf(x); }, {-2, -0.3, 0, 1, 2.5}},
      {"abs", [](const Real& a) { return abs(a); }, [](double x) { return std::fabs(x); }, {-2, -0.1, 0.5, 3}},
      {"fabs", [](const Real& a) { return fabs(a); }, [](double x) { return std::fabs(x); }, {-2, 0.5}},
      {"floor", [](const Real& a) { return floor(a); }, [](double x) { return std::floor(x); }, {-1.5, 0.3, 2.7}},
      {"ceil", [](const Real& a) { return ceil(a); }, [](double x) { return std::ceil(x); }, {-1.5, 0.3, 2.7}},
      {"clamp", [](const Real& a) { return clamp(a, -1.0, 2.0); }, [](double x) { return std::clamp(x, -1.0, 2.0); },
       {-3, -0.5, 1.5, 4}},
      {"sigmoid", [](const Real& a) { return sigmoid(a); }, ref_sigmoid, {-30, -2, 0, 1.5, 40}},
      {"log1p_exp", [](const Real& a) { return log1p_exp(a); }, [](double x) { return std::log1p(std::exp(x)); },
       {-40, -3, 0, 2, 50}},
      {"lgamma", [](const Real& a) { return lgamma(a); }, [](double x) { return std::lgamma(x); },
       {0.3, 1, 2, 2.5, 10, 150, -0.5, -2.5}},
      {"digamma", [](const Real& a) { return digamma(a); }, [](double x) { return boost::math::digamma(x); },
       {0.3, 1, 4.2, 50, -0.5, -2.5}},
  };
  for (const Unary& u : fns)
    for (double x : u.points) {
      INFO(u.name << " at x = " << x);
      const Real a = Real::variable(x, 0, 1);
      const Real r = u.f(a);
      CHECK(close(r.value(), u.ref(x)));
      const Fd fd = central(u.ref, x);
      INFO(fmt::format("derivative {:.15g}, finite difference {:.15g}", r.d(0), fd.d));
      CHECK(std::fabs(r.d(0) - fd.d) <= fd.tol);
      // a constant argument: the same value and no gradient
      const Real c = u.f(Real(x));
      CHECK(c.value() == r.value());
      CHECK(c.size() == 0);
    }
}

TEST_CASE("Real: partial derivatives of binary operations equal finite differences", "[real]") {
  const std::vector<std::pair<double, double>> pts = {{1.5, -0.7}, {-2, 3}, {0.25, 4}, {3, 0.5}};
  const std::vector<Binary> fns = {
      {"a + b", [](const Real& a, const Real& b) { return a + b; }, [](double x, double y) { return x + y; }, pts},
      {"a - b", [](const Real& a, const Real& b) { return a - b; }, [](double x, double y) { return x - y; }, pts},
      {"a * b", [](const Real& a, const Real& b) { return a * b; }, [](double x, double y) { return x * y; }, pts},
      {"a / b", [](const Real& a, const Real& b) { return a / b; }, [](double x, double y) { return x / y; }, pts},
      {"a += b", [](const Real& a, const Real& b) { Real r = a; r += b; return r; }, [](double x, double y) { return x + y; }, pts},
      {"a -= b", [](const Real& a, const Real& b) { Real r = a; r -= b; return r; }, [](double x, double y) { return x - y; }, pts},
      {"a *= b", [](const Real& a, const Real& b) { Real r = a; r *= b; return r; }, [](double x, double y) { return x * y; }, pts},
      {"a /= b", [](const Real& a, const Real& b) { Real r = a; r /= b; return r; }, [](double x, double y) { return x / y; }, pts},
      {"a * b + a / b - b", [](const Real& a, const Real& b) { return a * b + a / b - b; },
       [](double x, double y) { return x * y + x / y - y; }, pts},
      {"pow(a, b)", [](const Real& a, const Real& b) { return pow(a, b); }, [](double x, double y) { return std::pow(x, y); },
       {{2.5, 1.3}, {0.7, -0.4}, {3, 2}, {1, 0.5}}},
      {"atan2(a, b)", [](const Real& a, const Real& b) { return atan2(a, b); },
       [](double y, double x) { return std::atan2(y, x); }, {{1, 2}, {-1, -2}, {0.5, -3}, {-2, 0.1}, {0, 1}}},
      {"hypot(a, b)", [](const Real& a, const Real& b) { return hypot(a, b); },
       [](double x, double y) { return std::hypot(x, y); }, {{3, 4}, {-1, 0.2}, {1e-3, -2}}},
      {"min(a, b)", [](const Real& a, const Real& b) { return min(a, b); }, [](double x, double y) { return std::min(x, y); }, pts},
      {"max(a, b)", [](const Real& a, const Real& b) { return max(a, b); }, [](double x, double y) { return std::max(x, y); }, pts},
      {"exp(a) * sin(b) / (1 + a * a)", [](const Real& a, const Real& b) { return exp(a) * sin(b) / (1.0 + a * a); },
       [](double x, double y) { return std::exp(x) * std::sin(y) / (1 + x * x); }, pts},
  };
  for (const Binary& u : fns)
    for (const auto& [x, y] : u.points) {
      INFO(u.name << " at (" << x << ", " << y << ")");
      const Real r = u.f(Real::variable(x, 0, 2), Real::variable(y, 1, 2));
      REQUIRE(r.size() == 2);
      CHECK(close(r.value(), u.ref(x, y)));
      const Fd da = central([&](double t) { return u.ref(t, y); }, x);
      const Fd db = central([&](double t) { return u.ref(x, t); }, y);
      INFO(fmt::format("d/da {:.15g} vs {:.15g}; d/db {:.15g} vs {:.15g}", r.d(0), da.d, r.d(1), db.d));
      CHECK(std::fabs(r.d(0) - da.d) <= da.tol);
      CHECK(std::fabs(r.d(1) - db.d) <= db.tol);
      // one argument constant: its partial drops out, the other is unchanged (min/max may
      // return the constant operand itself, with no gradient at all: d() is 0 beyond size())
      const Real ra = u.f(Real::variable(x, 0, 2), Real(y));
      const Real rb = u.f(Real(x), Real::variable(y, 1, 2));
      CHECK(ra.value() == r.value());
      CHECK(rb.value() == r.value());
      CHECK(close(ra.d(0), r.d(0)));
      CHECK(ra.d(1) == 0.0);
      CHECK(rb.d(0) == 0.0);
      CHECK(close(rb.d(1), r.d(1)));
      // both constant: no gradient
      CHECK(u.f(Real(x), Real(y)).size() == 0);
    }
}

TEST_CASE("Real: mixed Real/double arithmetic", "[real]") {
  const double x = 1.7, c = -0.6;
  const Real a = Real::variable(x, 1, 3);  // θ_1 of a 3-parameter run
  struct Case {
    const char* name;
    Real r;
    double value, d1;  // value and ∂/∂θ_1 written out by hand
  };
  Real pe = a, me = a, te = a, de = a;
  pe += c;
  me -= c;
  te *= c;
  de /= c;
  const std::vector<Case> cases = {
      {"a + c", a + c, x + c, 1},
      {"c + a", c + a, c + x, 1},
      {"a - c", a - c, x - c, 1},
      {"c - a", c - a, c - x, -1},
      {"a * c", a * c, x * c, c},
      {"c * a", c * a, c * x, c},
      {"a / c", a / c, x / c, 1 / c},
      {"c / a", c / a, c / x, -c / (x * x)},
      {"a += c", pe, x + c, 1},
      {"a -= c", me, x - c, 1},
      {"a *= c", te, x * c, c},
      {"a /= c", de, x / c, 1 / c},
      {"2 * a * a - 3", 2.0 * a * a - 3.0, 2 * x * x - 3, 4 * x},
      {"int and long constants", a * 2 + Real(3L) - Real(1LL), 2 * x + 2, 2},
      {"Real(c) * a", Real(c) * a, c * x, c},
  };
  for (const Case& k : cases) {
    INFO(k.name);
    CHECK(close(k.r.value(), k.value));
    REQUIRE(k.r.size() == 3);
    CHECK(k.r.d(0) == 0.0);
    CHECK(close(k.r.d(1), k.d1));
    CHECK(k.r.d(2) == 0.0);
  }
  // a constant accumulator picks up the gradient of what is added to it
  Real acc;
  CHECK(acc.size() == 0);
  acc += a;
  acc += a * a;
  CHECK(acc.size() == 3);
  CHECK(close(acc.value(), x + x * x));
  CHECK(close(acc.d(1), 1 + 2 * x));
  Real prod(2.0);
  prod *= a;
  CHECK(prod.size() == 3);
  CHECK(close(prod.d(1), 2.0));
  // comparisons compare values only
  CHECK(a > 1.0);
  CHECK(1.0 < a);
  CHECK(a == Real(x));
  CHECK(a != c);
  CHECK(a <= Real::variable(x, 0, 3));
  CHECK(a >= x);
}

TEST_CASE("Real: constants carry no gradient", "[real]") {
  CHECK(Real().size() == 0);
  CHECK(Real().value() == 0.0);
  CHECK(Real(1.5).size() == 0);
  CHECK(Real(3).size() == 0);
  CHECK(Real(3L).size() == 0);
  CHECK(Real(3LL).size() == 0);
  CHECK(Real(3).value() == 3.0);
  CHECK(Real(1.5).is_constant());
  CHECK(Real(1.5).d(0) == 0.0);  // beyond size(): 0
  const Real one(1.0), two(2.0);
  CHECK((one + two).size() == 0);
  CHECK((one * two - one / two).size() == 0);
  CHECK((one + 2.0).size() == 0);
  CHECK((3.0 * two).size() == 0);
  CHECK(exp(one).size() == 0);
  CHECK(pow(two, 3.0).size() == 0);
  CHECK(pow(2.0, two).size() == 0);
  CHECK(pow(one, two).size() == 0);
  CHECK(atan2(one, two).size() == 0);
  CHECK(lode::lgamma(Real(2.5)).size() == 0);
  CHECK(lode::digamma(Real(2.5)).size() == 0);
  CHECK(sigmoid(one).size() == 0);
  CHECK(log1p_exp(one).size() == 0);
  Real acc(0.0);
  acc += one;
  acc *= two;
  CHECK(acc.size() == 0);
  CHECK(acc.value() == 2.0);

  // variables: a unit gradient; with_gradient; is_constant
  const Real v = Real::variable(0.5, 2, 4);
  CHECK(v.size() == 4);
  CHECK(v.d(0) == 0.0);
  CHECK(v.d(2) == 1.0);
  CHECK(v.d(7) == 0.0);
  CHECK_FALSE(v.is_constant());
  const double g[] = {0.0, 0.0};
  CHECK(Real::with_gradient(1.0, g, 2).is_constant());  // zero gradient entries: constant in value
  CHECK(Real::with_gradient(1.0, g, 2).size() == 2);
  const double g2[] = {0.5, -2.0};
  const Real w = Real::with_gradient(3.0, g2, 2);
  CHECK((w * w).d(1) == -12.0);
  // piecewise-constant functions of a variable have zero derivative
  CHECK(floor(v).d(2) == 0.0);
  CHECK(clamp(Real::variable(5.0, 0, 1), 0.0, 1.0).d(0) == 0.0);
}

TEST_CASE("Real: lgamma at its poles is +inf, like lgamma(double)", "[real]") {
  for (double x : {0.0, -1.0, -2.0}) {
    INFO("x = " << x);
    CHECK(lode::lgamma(x) == std::numeric_limits<double>::infinity());
    REQUIRE_NOTHROW(lode::lgamma(Real(x)));
    REQUIRE_NOTHROW(lode::lgamma(Real::variable(x, 0, 1)));
    const Real c = lode::lgamma(Real(x));
    const Real v = lode::lgamma(Real::variable(x, 0, 1));
    CHECK(c.value() == std::numeric_limits<double>::infinity());
    CHECK(c.size() == 0);
    CHECK(v.value() == std::numeric_limits<double>::infinity());
    CHECK(std::isnan(v.d(0)));  // the derivative does not exist there
  }
}

TEST_CASE("Real: gradients of different lengths combine", "[real]") {
  // Not normal use (one run has one parameter count), but the kernels must not read garbage.
  const Real a = Real::variable(1.0, 0, 2), b = Real::variable(2.0, 2, 3);
  const Real s = a + b;
  CHECK(s.size() == 3);
  CHECK(s.d(0) == 1.0);
  CHECK(s.d(1) == 0.0);
  CHECK(s.d(2) == 1.0);
  Real t = a;
  t += b;
  CHECK(t.size() == 3);
  CHECK(t.d(0) == 1.0);
  CHECK(t.d(1) == 0.0);
  CHECK(t.d(2) == 1.0);
  const Real p = a * b;  // ∂/∂θ0 = b = 2, ∂/∂θ2 = a = 1
  CHECK(p.d(0) == 2.0);
  CHECK(p.d(2) == 1.0);
}

TEST_CASE("Real: stream output", "[real]") {
  std::ostringstream os;
  os << Real(1.5) << " | " << Real::variable(2.0, 1, 2);
  CHECK(os.str() == "1.5 | 2 [0, 1]");
}
