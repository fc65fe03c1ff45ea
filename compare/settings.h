// The engine's settings: one declarative table (name, type, range, default, help) from
// which come the Settings struct, validation, the config file keys, `config set` and the
// documentation. A Settings value is an immutable snapshot once built; changing a value
// means building a new snapshot with `with()` and publishing it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace lockstep {

// X(name, kind, min, max, default, enum-choices, help)
//   kind: u64 (integer in [min,max]), bool, choice (one of enum-choices, '|'-separated),
//         text (free text, validated by its consumer).
// Defaults are chosen for a real deployment; the reasons are in the help and in
// compare/README.md.
#define LOCKSTEP_SETTINGS(X)                                                                    \
  X(mode, choice, 0, 0, "colo", "colo|buffer|passthrough",                                      \
    "colo compares; buffer holds all PVM output until the next checkpoint; passthrough "       \
    "releases at once")                                                                         \
  X(compare_timeout_us, u64, 100, 60000000, "100000", "",                                       \
    "longest a held PVM frame waits for its SVM match before a checkpoint is requested; "      \
    "100 ms covers SVM lag under load while bounding the client's stall")                     \
  X(ack_timeout_us, u64, 1000, 60000000, "300000", "",                                          \
    "longest a PVM frame waits for the SVM's ACK to reach its own before the SVM is taken to "  \
    "have lost client data (ack_divergence); 300 ms is Linux's 200 ms delayed-ACK maximum "   \
    "plus the SVM's lag allowance, so two kernels' ACK timers never look like divergence")    \
  X(max_connections, u64, 16, 16777216, "65536", "",                                            \
    "connection table capacity (fixed at start); a full table requests a checkpoint")          \
  X(max_held_frames, u64, 64, 16777216, "262144", "",                                           \
    "frames the engine may hold at once (PVM, SVM and SVM-bound ingress); reaching it "        \
    "requests a checkpoint, never a drop")                                                      \
  X(reorder_window, u64, 4, 65536, "2048", "",                                                  \
    "segments one side of one connection may hold ahead of the compare point (out of "          \
    "order or lagging); 2048 covers a 2.9 MB window of 1448 B segments")                      \
  X(datagram_reorder_slack, u64, 0, 64, "2", "",                                                \
    "unmatched datagrams tolerated on both sides of a flow at once before a mismatch is "      \
    "declared; covers small reordering without waiting for the deadline")                     \
  X(idle_timeout_ms, u64, 1000, 86400000, "300000", "",                                         \
    "a connection that holds nothing and saw no frame for this long is expired")               \
  X(closed_linger_ms, u64, 0, 600000, "2000", "",                                               \
    "after FIN both ways or RST, a connection that holds nothing lingers this long to absorb " \
    "retransmissions, then is expired")                                                         \
  X(frag_timeout_ms, u64, 10, 120000, "2000", "",                                               \
    "an incomplete IP datagram is given up after this long (its fragments are counted)")       \
  X(frag_max_datagrams, u64, 1, 65536, "1024", "",                                              \
    "datagrams being reassembled at once")                                                      \
  X(malformed_policy, choice, 0, 0, "drop", "drop|pass",                                        \
    "fate of a PVM frame that cannot be parsed; either way it is counted")                     \
  X(non_ip_policy, choice, 0, 0, "pass", "compare|pass|drop",                                   \
    "fate of non-IP frames (ARP, LLDP): pass releases the PVM's at once and frees the "         \
    "SVM's; compare matches whole frames FIFO")                                                 \
  X(nd_policy, choice, 0, 0, "pass", "compare|pass|drop",                                       \
    "fate of ICMPv6 neighbour/router discovery (types 133-137)")                               \
  X(policy_rules, text, 0, 0, "", "",                                                           \
    "';'-separated rules 'PROTO[:PORT[-PORT]][@PREFIX]=compare|pass|drop', first match wins; " \
    "PROTO is tcp, udp, icmp, icmpv6, ip or a number")                                         \
  X(default_policy, choice, 0, 0, "compare", "compare|pass|drop",                               \
    "fate of IP traffic no rule matches")                                                       \
  X(translate_timestamps, bool, 0, 1, "true", "",                                               \
    "rewrite the TSecr of SVM-bound client segments into the SVM's timestamp clock")            \
  X(hold_svm_ingress, bool, 0, 1, "true", "",                                                   \
    "hold SVM-bound client segments that need an ack translation not learned yet (the SVM's "  \
    "SYN/ACK still on its way) instead of sending them untranslated")                           \
  X(buffer_epoch_us, u64, 100, 60000000, "20000", "",                                           \
    "buffer mode: a checkpoint is requested when the oldest held output is this old")          \
  X(hybrid, bool, 0, 1, "false", "",                                                            \
    "switch colo -> buffer when checkpoints come faster than hybrid_threshold per "             \
    "hybrid_window_ms, and back after hybrid_quiet_ms without divergence")                      \
  X(hybrid_threshold, u64, 1, 100000, "20", "", "checkpoints per window that switch to buffer") \
  X(hybrid_window_ms, u64, 10, 600000, "1000", "", "window over which checkpoints are counted") \
  X(hybrid_quiet_ms, u64, 10, 3600000, "5000", "",                                              \
    "time in buffer mode after which colo is tried again")                                     \
  X(normalize_rules, text, 0, 0, "", "",                                                        \
    "payload normalization rules, newline- or ';'-separated: 'NAME PROTO[:PORTS][@PREFIX] "   \
    "PATTERN' (Hyperscan) or '@SET [SELECTOR]' for a shipped set (http, smtp, imap, pop3); "   \
    "spans both VMs match with the same rule at the same position compare equal "             \
    "(docs/normalization.md)")                                                                  \
  X(normalize_max_span, u64, 8, 65535, "256", "",                                               \
    "longest span a rule may mark; a TCP mismatch on a connection with rules is declared once " \
    "both sides are this far past it (or at the deadline), since a span could still cover it") \
  X(normalize_max_conns, u64, 1, 16777216, "16384", "",                                         \
    "connections that may carry normalization state at once; beyond it a connection is "       \
    "compared byte for byte (counted normalize_no_slot)")

enum class SettingKind : uint8_t { u64, boolean, choice, text };

struct SettingInfo {
  std::string_view name;
  SettingKind kind;
  uint64_t min, max;
  std::string_view default_value;
  std::string_view choices;  // '|'-separated for choice
  std::string_view help;
};

// The table, in declaration order.
const std::vector<SettingInfo>& settings_table();
const SettingInfo* find_setting(std::string_view name);

#define LOCKSTEP_SETTING_TYPE_u64 uint64_t
#define LOCKSTEP_SETTING_TYPE_bool bool
#define LOCKSTEP_SETTING_TYPE_choice std::string
#define LOCKSTEP_SETTING_TYPE_text std::string

struct Settings {
#define LOCKSTEP_X(name, kind, min, max, def, choices, help) LOCKSTEP_SETTING_TYPE_##kind name{};
  LOCKSTEP_SETTINGS(LOCKSTEP_X)
#undef LOCKSTEP_X

  // The defaults of the table.
  static Settings defaults();

  // A copy with `name` set to `value`. Returns false and fills `error` (naming the key
  // and the accepted range or choices) when the key is unknown or the value invalid.
  bool with(std::string_view name, std::string_view value, Settings& out,
            std::string& error) const;

  // Applies every pair; stops at the first error.
  bool with_all(const std::map<std::string, std::string>& kv, Settings& out,
                std::string& error) const;

  // Current value of a setting as text, as `config get` shows it. Empty for unknown.
  std::string get(std::string_view name) const;
};

}  // namespace lockstep
