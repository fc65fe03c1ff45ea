// The settings as the per-frame path reads them: durations in nanoseconds, policies
// decoded, limits as plain integers. Derived from a Settings snapshot by the engine
// (at creation and on every apply_settings); every part of the engine reads it, none
// writes it. Kept flat and small so that it shares cache lines with nothing cold.
#pragma once

#include <cstdint>

#include "compare/policy.h"
#include "compare/settings.h"

namespace lockstep {

struct Tuning {
  uint64_t timeout_ns = 0;         // compare_timeout_us: a held frame's wait for its match
  uint64_t ack_ns = 0;             // ack_timeout_us: the SVM's ACK may stay behind this long
  uint64_t idle_ns = 0;            // idle_timeout_ms
  uint64_t linger_ns = 0;          // closed_linger_ms
  uint64_t frag_timeout_ns = 0;    // frag_timeout_ms
  uint64_t buffer_epoch_ns = 0;    // buffer_epoch_us
  uint64_t hybrid_window_ns = 0;   // hybrid_window_ms
  uint64_t hybrid_quiet_ns = 0;    // hybrid_quiet_ms
  uint64_t reorder_window = 0;     // segments (TCP) or datagrams held per side and flow
  uint64_t datagram_reorder_slack = 0;
  PolicyAction non_ip_policy = PolicyAction::pass;
  PolicyAction nd_policy = PolicyAction::pass;
  bool malformed_pass = false;
  bool hold_svm_ingress = true;
  bool translate_timestamps = true;
  bool hybrid = false;

  static Tuning from(const Settings& s) {
    Tuning t;
    t.timeout_ns = s.compare_timeout_us * 1000;
    t.ack_ns = s.ack_timeout_us * 1000;
    t.idle_ns = s.idle_timeout_ms * 1000000;
    t.linger_ns = s.closed_linger_ms * 1000000;
    t.frag_timeout_ns = s.frag_timeout_ms * 1000000;
    t.buffer_epoch_ns = s.buffer_epoch_us * 1000;
    t.hybrid_window_ns = s.hybrid_window_ms * 1000000;
    t.hybrid_quiet_ns = s.hybrid_quiet_ms * 1000000;
    t.reorder_window = s.reorder_window;
    t.datagram_reorder_slack = s.datagram_reorder_slack;
    policy_action_from_string(s.non_ip_policy, t.non_ip_policy);
    policy_action_from_string(s.nd_policy, t.nd_policy);
    t.malformed_pass = s.malformed_policy == "pass";
    t.hold_svm_ingress = s.hold_svm_ingress;
    t.translate_timestamps = s.translate_timestamps;
    t.hybrid = s.hybrid;
    return t;
  }
};

}  // namespace lockstep
