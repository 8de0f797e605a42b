// lode/lode.hpp — everything a simulator author needs: Run, Real, addresses, distributions.
#pragma once

#include "lode/address.hpp"
#include "lode/distributions.hpp"
#include "lode/error.hpp"
#include "lode/model.hpp"
#include "lode/real.hpp"
#include "lode/run.hpp"
