#include "tools/replay/replay.h"

#include <algorithm>
#include <limits>

#include "tools/replay/json_line.h"

namespace lockstep::replay {

namespace {

constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();
// advance(t) fires every deadline at or before t, so the next deadline must move past
// t. An engine that keeps reporting a deadline at t this many times is not progressing.
constexpr uint64_t kMaxStuckSteps = 1000;

std::string reason_name(const Action& a) {
  if (a.kind == ActionKind::release && a.reason < kReleaseReasonCount)
    return std::string(to_string(static_cast<ReleaseReason>(a.reason)));
  if (a.kind == ActionKind::drop && a.reason < kDropReasonCount)
    return std::string(to_string(static_cast<DropReason>(a.reason)));
  return "reason#" + std::to_string(a.reason);
}

bool kind_fits_side(ActionKind k, Side s) {
  switch (k) {
    case ActionKind::release: return s == Side::pvm || s == Side::svm;
    case ActionKind::free: return s == Side::svm;
    case ActionKind::drop: return true;
    case ActionKind::forward_svm: return s == Side::ingress;
  }
  return false;
}

}  // namespace

Replayer::Replayer(Engine& engine, std::array<Capture*, 3> caps, uint64_t checkpoint_latency_ns,
                   Sinks sinks)
    : engine_(engine), caps_(caps), latency_ns_(checkpoint_latency_ns), sinks_(sinks) {
  for (size_t s = 0; s < 3; ++s) fate_[s].assign(caps_[s]->frames.size(), 0);
  pvm_push_ns_.assign(caps_[static_cast<size_t>(Side::pvm)]->frames.size(), 0);
  actions_.reserve(drain_buf_.size());
}

void Replayer::emit(const std::string& line) {
  if (sinks_.events != nullptr) sinks_.events->write(line);
}

ReplayResult Replayer::run(const std::vector<MergedFrame>& order) {
  mode_ = engine_.mode();
  if (!order.empty()) now_ = order.front().t_ns;
  write_start_line();
  for (const MergedFrame& m : order) {
    if (engine_stuck_) break;
    run_until(m.t_ns);
    now_ = std::max(now_, m.t_ns);
    Capture& c = *caps_[static_cast<size_t>(m.side)];
    if (m.side == Side::pvm) pvm_push_ns_[m.index] = now_;
    ++pushed_;
    (void)engine_.push(m.side, make_handle(m.side, m.index), c.data(m.index),
                       c.frames[m.index].caplen, now_);
    after_step(nullptr);
  }
  // Input is over: let virtual time run until nothing is held and nothing is pending.
  ReplayResult r;
  while (!engine_stuck_ && (engine_.held_frames() > 0 || !pending_.empty())) {
    const uint64_t due = pending_.empty() ? kNever : pending_.front().due_ns;
    const uint64_t next = std::min(due, engine_.next_deadline());
    if (next == kNever) {
      r.drained = false;  // held frames with no deadline and no checkpoint to come
      break;
    }
    run_until(std::max(next, now_));
  }
  r.end_ns = now_;
  r.held_frames_at_end = engine_.held_frames();
  write_summary(r);
  return r;
}

void Replayer::run_until(uint64_t t) {
  while (!engine_stuck_) {
    const uint64_t due = pending_.empty() ? kNever : pending_.front().due_ns;
    const uint64_t deadline = engine_.next_deadline();
    const uint64_t next = std::min(due, deadline);
    if (next == kNever || next > t) return;
    if (due <= deadline) {
      now_ = std::max(now_, due);
      deliver_checkpoint();
      continue;
    }
    const uint64_t at = std::max(now_, deadline);
    stuck_steps_ = (at == now_ && deadline <= now_) ? stuck_steps_ + 1 : 0;
    if (stuck_steps_ > kMaxStuckSteps) {
      engine_stuck_ = true;
      return;
    }
    now_ = at;
    engine_.advance(now_);
    after_step(nullptr);
  }
}

void Replayer::deliver_checkpoint() {
  const PendingCheckpoint cp = pending_.front();
  pending_.pop_front();
  engine_.checkpoint_done(cp.epoch, now_);
  Tally tally;
  tally.epoch = cp.epoch;
  after_step(&tally);
}

void Replayer::after_step(Tally* tally) {
  collect_actions();
  if (tally != nullptr) {
    for (const Action& a : actions_) {
      const Side s = static_cast<Side>(a.handle >> 32);
      if (a.kind == ActionKind::release && s == Side::pvm) ++tally->released;
      if (a.kind == ActionKind::drop && s == Side::svm) ++tally->dropped_secondary;
    }
    emit(JsonLine()
             .time_us("t_us", now_)
             .str("event", "checkpoint_done")
             .num("epoch", tally->epoch)
             .num("released", tally->released)
             .num("dropped_secondary", tally->dropped_secondary)
             .line());
  }
  for (const Action& a : actions_) handle_action(a);
  take_requests();
  const Mode m = engine_.mode();
  if (m != mode_) {
    emit(JsonLine()
             .time_us("t_us", now_)
             .str("event", "mode")
             .str("from", to_string(mode_))
             .str("to", to_string(m))
             .line());
    mode_ = m;
  }
}

void Replayer::collect_actions() {
  actions_.clear();
  for (;;) {
    const uint32_t n = engine_.drain(drain_buf_);
    actions_.insert(actions_.end(), drain_buf_.begin(), drain_buf_.begin() + n);
    if (n < drain_buf_.size()) break;
  }
}

void Replayer::handle_action(const Action& a) {
  const uint64_t side_bits = a.handle >> 32;
  const uint32_t index = static_cast<uint32_t>(a.handle);
  if (side_bits > 2 || index >= caps_[side_bits]->frames.size()) {
    ++bad_handles_;
    return;
  }
  const Side side = static_cast<Side>(side_bits);
  uint8_t& fate = fate_[side_bits][index];
  if (fate != 0) {
    ++duplicate_actions_;
    return;
  }
  fate = 1;
  ++acted_;
  if (!kind_fits_side(a.kind, side)) ++wrong_kind_;
  if ((a.kind == ActionKind::release && a.reason >= kReleaseReasonCount) ||
      (a.kind == ActionKind::drop && a.reason >= kDropReasonCount))
    ++bad_reasons_;
  Capture& c = *caps_[side_bits];
  const Frame& f = c.frames[index];
  switch (a.kind) {
    case ActionKind::release: {
      sinks_.released->write(now_, c.data(index), f.caplen, f.wirelen);
      JsonLine line;
      line.time_us("t_us", now_).str("event", "release");
      if (side == Side::pvm) {
        line.num("pvm_index", index).time_us("delay_us", now_ - pvm_push_ns_[index]);
      } else {
        line.num("svm_index", index);
      }
      emit(line.str("reason", reason_name(a)).line());
      break;
    }
    case ActionKind::forward_svm:
      if (sinks_.svm_ingress != nullptr)
        sinks_.svm_ingress->write(now_, c.data(index), f.caplen, f.wirelen);
      break;
    case ActionKind::drop:
      if (side == Side::pvm) {
        emit(JsonLine()
                 .time_us("t_us", now_)
                 .str("event", "drop")
                 .num("pvm_index", index)
                 .str("reason", reason_name(a))
                 .line());
      }
      break;
    case ActionKind::free:
      break;
  }
}

void Replayer::take_requests() {
  while (const std::optional<CheckpointRequest> req = engine_.take_checkpoint_request()) {
    JsonLine line;
    line.time_us("t_us", req->t_ns)
        .str("event", "checkpoint_request")
        .num("epoch", req->epoch)
        .str("reason", to_string(req->reason))
        .str("flow", req->has_flow ? to_string(req->flow) : std::string());
    const DivergenceDetail& d = req->detail;
    if (req->frame_ns != 0) line.time_us("frame_t_us", req->frame_ns);
    if (d.has_offset) line.num("stream_offset", d.stream_offset);
    if (d.has_seq) line.num("pvm_seq", d.pvm_seq);
    if (d.pvm_len != 0 || d.svm_len != 0) {
      line.num("shown_before", d.shown_before)
          .str("pvm_hex", to_hex(d.pvm.data(), d.pvm_len))
          .str("svm_hex", to_hex(d.svm.data(), d.svm_len));
    }
    if (d.line_len != 0) line.str("line", to_printable(d.line.data(), d.line_len));
    if (req->reason == CheckpointReason::deadline) line.str("waiting", to_string(d.waiting));
    if (d.ack_lag != 0) line.num("ack_lag", d.ack_lag);
    emit(line.line());
    pending_.push_back(PendingCheckpoint{now_ + latency_ns_, req->epoch});
  }
}

void Replayer::write_start_line() {
  JsonLine inputs;
  inputs.num("ingress", caps_[0]->frames.size())
      .num("primary", caps_[1]->frames.size())
      .num("secondary", caps_[2]->frames.size());
  JsonLine settings;
  for (const SettingInfo& info : settings_table())
    settings.str(info.name, engine_.settings().get(info.name));
  emit(JsonLine()
           .time_us("t_us", now_)
           .str("event", "start")
           .raw("frames", inputs.object())
           .time_us("checkpoint_latency_us", latency_ns_)
           .raw("settings", settings.object())
           .line());
}

void Replayer::write_summary(ReplayResult& r) {
  const Counters& c = engine_.counters();
  r.conservation = c.conservation_error();
  std::string contract;
  auto note = [&contract](uint64_t n, const char* what) {
    if (n == 0) return;
    if (!contract.empty()) contract += "; ";
    contract += std::to_string(n) + " " + what;
  };
  note(bad_handles_, "actions named an unknown handle");
  note(duplicate_actions_, "handles got a second action");
  note(wrong_kind_, "actions do not fit the frame's side");
  note(bad_reasons_, "actions carry an unknown reason");
  if (pushed_ - acted_ != engine_.held_frames() && !engine_stuck_)
    note(pushed_ - acted_, "frames without an action, but held_frames() differs");
  if (engine_stuck_) {
    if (!contract.empty()) contract += "; ";
    contract += "next_deadline() stayed at " + std::to_string(now_) + " ns after advance()";
  }
  r.contract = contract;

  JsonLine s;
  s.str("event", "summary").time_us("t_us", now_);
  std::vector<std::string> names;
  for (const auto& [name, value] : c.flatten()) {
    s.num(name, value);
    names.push_back(name);
  }
  auto absent = [&names](std::string_view n) {
    return std::find(names.begin(), names.end(), n) == names.end();
  };
  JsonLine by_policy, svm_by_reason, ingress_by_reason, released_by_reason;
  for (unsigned i = 0; i < kDropReasonCount; ++i) {
    const auto name = to_string(static_cast<DropReason>(i));
    by_policy.num(name, c.pvm_dropped[i]);
    svm_by_reason.num(name, c.svm_dropped[i]);
    ingress_by_reason.num(name, c.ingress_dropped[i]);
  }
  for (unsigned i = 0; i < kReleaseReasonCount; ++i)
    released_by_reason.num(to_string(static_cast<ReleaseReason>(i)), c.released[i]);
  auto add_num = [&](std::string_view n, uint64_t v) {
    if (absent(n)) s.num(n, v);
  };
  auto add_raw = [&](std::string_view n, const std::string& v) {
    if (absent(n)) s.raw(n, v);
  };
  add_num("pvm_in", c.pvm_in);
  add_num("released", c.released_pvm());
  add_num("released_total", c.released_total());
  add_raw("released_by_reason", released_by_reason.object());
  add_num("dropped", c.pvm_dropped_total());
  add_raw("dropped_by_policy", by_policy.object());
  add_num("held_at_end", c.held_pvm);
  add_num("held_frames_at_end", r.held_frames_at_end);
  add_num("checkpoints", c.checkpoint_requests);
  add_num("svm_in", c.svm_in);
  add_num("svm_dropped", c.svm_dropped_total());
  add_raw("svm_dropped_by_reason", svm_by_reason.object());
  add_num("ingress_in", c.ingress_in);
  add_num("ingress_dropped", c.ingress_dropped_total());
  add_raw("ingress_dropped_by_reason", ingress_by_reason.object());
  add_num("released_frames_written", sinks_.released->frames_written());
  if (sinks_.svm_ingress != nullptr)
    add_num("svm_ingress_frames_written", sinks_.svm_ingress->frames_written());
  s.str("drained", r.drained ? "yes" : "no");
  s.str("contract", contract.empty() ? "ok" : contract);
  s.str("conservation", r.conservation.empty() ? "ok" : r.conservation);
  emit(s.line());
}

}  // namespace lockstep::replay
