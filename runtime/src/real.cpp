#include "lode/real.hpp"

#include <ostream>

namespace lode {

std::ostream& operator<<(std::ostream& os, const Real& r) {
  os << r.v_;
  if (r.n_ > 0) {
    os << " [d:";
    for (int i = 0; i < r.n_; ++i) os << ' ' << r.d_[i];
    os << ']';
  }
  return os;
}

}  // namespace lode
