// lode/distributions.hpp — every built-in distribution (one header each in distributions/).
#pragma once

#include "lode/distributions/bernoulli.hpp"
#include "lode/distributions/beta.hpp"
#include "lode/distributions/binomial.hpp"
#include "lode/distributions/categorical.hpp"
#include "lode/distributions/exponential.hpp"
#include "lode/distributions/gamma.hpp"
#include "lode/distributions/geometric.hpp"
#include "lode/distributions/lognormal.hpp"
#include "lode/distributions/mixture.hpp"
#include "lode/distributions/multivariate_normal.hpp"
#include "lode/distributions/normal.hpp"
#include "lode/distributions/poisson.hpp"
#include "lode/distributions/student_t.hpp"
#include "lode/distributions/uniform.hpp"
