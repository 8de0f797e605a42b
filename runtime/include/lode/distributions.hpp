// lode/distributions.hpp — every built-in distribution (one header each in distributions/).
#pragma once

#include "lode/distributions/bernoulli.hpp"
#include "lode/distributions/normal.hpp"
