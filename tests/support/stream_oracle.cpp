#include "tests/support/stream_oracle.h"

#include <algorithm>
#include <cstring>

namespace lockstep::test {

void StreamOracle::add(Vm vm, uint64_t off, std::span<const uint8_t> bytes) {
  Side& s = side(vm);
  size_t end = static_cast<size_t>(off) + bytes.size();
  if (s.data.size() < end) {
    s.data.resize(end, 0);
    s.present.resize(end, 0);
  }
  for (size_t i = 0; i < bytes.size(); ++i) {
    size_t o = static_cast<size_t>(off) + i;
    if (s.present[o] && s.data[o] != bytes[i]) inconsistent_ = true;
    s.data[o] = bytes[i];
    s.present[o] = 1;
  }
}

uint64_t StreamOracle::contiguous(Vm vm) const {
  const Side& s = side(vm);
  auto it = std::find(s.present.begin(), s.present.end(), uint8_t{0});
  return static_cast<uint64_t>(it - s.present.begin());
}

uint64_t StreamOracle::extent(Vm vm) const {
  const Side& s = side(vm);
  for (size_t i = s.present.size(); i > 0; --i)
    if (s.present[i - 1]) return i;
  return 0;
}

bool StreamOracle::has(Vm vm, uint64_t a, uint64_t b) const {
  const Side& s = side(vm);
  if (b > s.present.size()) return false;
  for (uint64_t o = a; o < b; ++o)
    if (!s.present[static_cast<size_t>(o)]) return false;
  return true;
}

bool StreamOracle::matched(uint64_t a, uint64_t b) const {
  if (!has(Vm::pvm, a, b) || !has(Vm::svm, a, b)) return false;
  return b == a || std::memcmp(pvm_.data.data() + a, svm_.data.data() + a,
                               static_cast<size_t>(b - a)) == 0;
}

std::optional<uint64_t> StreamOracle::first_difference() const {
  size_t n = std::min(pvm_.data.size(), svm_.data.size());
  for (size_t o = 0; o < n; ++o)
    if (pvm_.present[o] && svm_.present[o] && pvm_.data[o] != svm_.data[o]) return o;
  return std::nullopt;
}

StreamOracle::Verdict StreamOracle::verdict() const {
  Verdict v;
  size_t n = std::max(pvm_.data.size(), svm_.data.size());
  for (size_t o = 0; o < n; ++o) {
    bool p = o < pvm_.present.size() && pvm_.present[o];
    bool s = o < svm_.present.size() && svm_.present[o];
    if (!p || !s || pvm_.data[o] != svm_.data[o]) {
      v.first_diff = o;
      return v;
    }
  }
  v.identical = true;
  v.first_diff = n;
  return v;
}

}  // namespace lockstep::test
