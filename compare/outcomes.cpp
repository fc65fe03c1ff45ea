// Outcomes (outcomes.h): frames leaving the engine, counted once each.
#include "compare/outcomes.h"

#include "compare/frag_table.h"

namespace lockstep {

namespace {

uint8_t u8(ReleaseReason r) { return static_cast<uint8_t>(r); }
uint8_t u8(DropReason r) { return static_cast<uint8_t>(r); }
unsigned ix(ReleaseReason r) { return static_cast<unsigned>(r); }
unsigned ix(DropReason r) { return static_cast<unsigned>(r); }

}  // namespace

inline void Outcomes::leave(Held& h) {
  if (h.reasm != kNil) frags_.release_buffer(h.reasm);
}

void Outcomes::count_drop(Side side, DropReason why) {
  switch (side) {
    case Side::pvm: ++c_.pvm_dropped[ix(why)]; break;
    case Side::svm: ++c_.svm_dropped[ix(why)]; break;
    case Side::ingress: ++c_.ingress_dropped[ix(why)]; break;
  }
}

void Outcomes::release_frame(uint32_t idx, ReleaseReason why) {
  if (pool_[idx].side == Side::pvm) {
    const uint64_t held = now_ > pool_[idx].arrival_ns ? now_ - pool_[idx].arrival_ns : 0;
    const unsigned b = latency_bucket(held);
    c_.held_release_ns += held;
    ++c_.hold_hist[b];
    if (why == ReleaseReason::matched) {
      c_.svm_lag_ns += held;
      ++c_.svm_lag_hist[b];
    }
  }
  for (uint32_t j = idx; j != kNil;) {
    Held& h = pool_[j];
    const uint32_t next = h.frag_next;
    leave(h);
    emit(h.handle, ActionKind::release, u8(why), h.side);
    ++c_.released[ix(why)];
    held_.free(j);
    j = next;
  }
}

void Outcomes::drop_frame(uint32_t idx, DropReason why) {
  for (uint32_t j = idx; j != kNil;) {
    Held& h = pool_[j];
    const uint32_t next = h.frag_next;
    leave(h);
    emit(h.handle, ActionKind::drop, u8(why), h.side);
    count_drop(h.side, why);
    held_.free(j);
    j = next;
  }
}

void Outcomes::free_svm_frame(uint32_t idx) {
  for (uint32_t j = idx; j != kNil;) {
    Held& h = pool_[j];
    const uint32_t next = h.frag_next;
    leave(h);
    emit(h.handle, ActionKind::free, 0, Side::svm);
    ++c_.svm_freed;
    held_.free(j);
    j = next;
  }
}

void Outcomes::forward_ingress(uint32_t idx, bool translated) {
  Held& h = pool_[idx];
  if (!translated) ++c_.ingress_untranslated;
  emit(h.handle, ActionKind::forward_svm, 0, Side::ingress);
  ++c_.svm_forwarded;
  held_.free(idx);
}

void Outcomes::drop_direct(Side side, uint64_t handle, DropReason why) {
  emit(handle, ActionKind::drop, u8(why), side);
  count_drop(side, why);
}

// A caller that never drains everything: drop the consumed prefix now and then.
void Outcomes::compact() {
  std::copy(buf_.get() + head_, buf_.get() + size_, buf_.get());
  size_ -= head_;
  head_ = 0;
}

void Outcomes::grow(size_t cap) {
  auto bigger = std::make_unique_for_overwrite<Action[]>(cap);
  std::copy(buf_.get() + head_, buf_.get() + size_, bigger.get());
  buf_ = std::move(bigger);
  size_ -= head_;
  head_ = 0;
  cap_ = cap;
}

}  // namespace lockstep
