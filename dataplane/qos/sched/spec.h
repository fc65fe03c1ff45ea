// The scheduler's configuration language, in the vocabulary of tc(8). One command per
// line; the same lines serve the config file and `lockstepctl qos ...`:
//
//   qdisc  add|change|replace [dev] DEV rate RATE [burst SIZE] [default CLASS]
//   class  add|change|replace [dev] DEV NAME [prio 0-7] [rate RATE] [ceil RATE]
//          [burst SIZE] [cburst SIZE] [conn-rate RATE] [conn-burst SIZE] [limit PACKETS]
//          [limit-bytes SIZE] [conn-limit PACKETS] [quantum SIZE] [default]
//   class  del [dev] DEV NAME
//   filter add|replace [dev] DEV [pref N] MATCH... class NAME   (also: flowid/classid NAME)
//   filter del [dev] DEV pref N
//   MATCH: src PREFIX | dst PREFIX | sport P[-P] | dport P[-P] | port P[-P]
//          | proto tcp|udp|icmp|icmpv6|sctp|N | dscp N|0xN|ef|csN|afNN[,...]
//          | family ipv4|ipv6 | role proxy|svm_output|checkpoint|block_replication|heartbeat|other
//          | guest NAME | all
//   RATE: a number with bit, kbit, mbit, gbit, tbit (decimal bits/s), kibit..tibit (binary),
//         bps, kbps, mbps, gbps, tbps (bytes/s), or a bare number (bits/s), as tc reads them
//   SIZE: a number with b (bytes), k/kb, m/mb, g/gb (x1024), kbit/mbit/gbit (bits), or bare
//         (bytes)
//
// Parsing is pure: it checks syntax and ranges and names the offending token in its error;
// whether the command fits the running configuration is sched_config.h's job.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/qos/sched/classifier.h"

namespace lockstep::sched {

// Single values. Each returns false and sets `err` (naming the token) on bad input.
bool parse_rate(std::string_view tok, uint64_t& bytes_per_s, std::string& err);
bool parse_size(std::string_view tok, uint64_t& bytes, std::string& err);
bool parse_uint(std::string_view tok, uint64_t max, uint64_t& out, std::string& err);
bool parse_prefix(std::string_view tok, IpPrefix& out, std::string& err);
bool parse_port_range(std::string_view tok, PortRange& out, std::string& err);
bool parse_proto(std::string_view tok, uint8_t& out, std::string& err);
bool parse_dscp_set(std::string_view tok, uint64_t& set, std::string& err);

// The guests `guest NAME` may name (lockstepd's guests, the index is the position), for
// the parses on this thread while the scope lives. Without one, `guest` is refused
// (unknown guest). `any_name`: every well-formed name is taken, unresolved (a config key
// checked before the file's guests are known; the whole is checked again with them).
class GuestNamesScope {
 public:
  explicit GuestNamesScope(std::span<const std::string> names, bool any_name = false);
  ~GuestNamesScope();
  GuestNamesScope(const GuestNamesScope&) = delete;
  GuestNamesScope& operator=(const GuestNamesScope&) = delete;

 private:
  std::span<const std::string> prev_names_;
  bool prev_any_ = false, prev_set_ = false;
};

// One MATCH word (src, dst, sport, dport, port, proto, dscp, family, role, guest, all) and its
// value at toks[i]: 1 when taken (i moves past them), 0 on a bad value (err names the
// word and token), -1 when toks[i] is not a MATCH word (i unchanged). Shared by filters
// and the role map (roles.h).
int parse_match_word(std::span<const std::string_view> toks, size_t& i, Match& m,
                     std::string& err);
// Cross-field checks of a whole MATCH ("" when consistent).
std::string check_match(const Match& m);

// Canonical text, readable back by the parsers ("10mbit", "1500b", "15k").
std::string format_rate(uint64_t bytes_per_s);
std::string format_size(uint64_t bytes);
std::string format_prefix(const IpPrefix& p);
std::string format_match(const Match& m);  // "" for match-all

enum class Object : uint8_t { qdisc, klass, filter };
enum class Verb : uint8_t { add, change, replace, del };
std::string_view to_string(Object o);
std::string_view to_string(Verb v);

struct QdiscSpec {
  std::optional<uint64_t> rate, burst;
  std::optional<std::string> default_class;
};

struct ClassSpec {
  std::string name;
  std::optional<uint8_t> prio;
  std::optional<uint64_t> rate, ceil, burst, cburst, conn_rate, conn_burst, limit_bytes;
  std::optional<uint32_t> limit, conn_limit, quantum;
  bool make_default = false;
};

struct FilterSpec {
  std::optional<uint32_t> pref;
  Match match;
  std::string class_name;
};

struct Command {
  Object object = Object::qdisc;
  Verb verb = Verb::add;
  std::string dev;
  QdiscSpec qdisc;
  ClassSpec klass;
  FilterSpec filter;
};

struct ParseResult {
  bool ok = false;
  std::string error;  // "rate: bad value '10mbps0' ..." naming the offending token
  Command cmd;
};

// One command. A leading "qos" or "tc" word is accepted and ignored; '#' starts a comment.
ParseResult parse_command(std::string_view line);

// A config file: one command per line, blank lines and comments skipped. Stops at the
// first bad line; the error says which line.
struct ScriptResult {
  bool ok = false;
  std::string error;
  std::vector<Command> cmds;
  std::vector<size_t> lines;  // line number of each command, for later errors
};
ScriptResult parse_script(std::string_view text);

// Splits on blanks; exposed for tests and for the ctrl codec.
std::vector<std::string_view> tokenize(std::string_view line);

}  // namespace lockstep::sched
