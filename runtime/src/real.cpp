#include "lode/real.hpp"

#include <ostream>

namespace lode {

std::ostream& operator<<(std::ostream& os, const Real& r) {
  // "2 [0, 1]": the value, then the gradient when there is one.
  os << r.v_;
  if (r.n() > 0) {
    os << " [";
    for (int i = 0; i < r.n(); ++i) os << (i ? ", " : "") << r.d_[i];
    os << ']';
  }
  return os;
}

}  // namespace lode
