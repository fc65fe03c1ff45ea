#include "dataplane/qos/sched/roles.h"

#include "dataplane/qos/sched/spec.h"

namespace lockstep::sched {
namespace {

std::string q(std::string_view t) { return "'" + std::string(t) + "'"; }

std::string role_names() {
  std::string all;
  for (unsigned r = 0; r < kTrafficRoleCount; ++r) {
    if (r) all += ' ';
    all += to_string(static_cast<TrafficRole>(r));
  }
  return all;
}

RoleParse fail(std::string e) {
  RoleParse r;
  r.error = std::move(e);
  return r;
}

// "[pref N] ROLE MATCH..." from toks[i]; `verb` is for the messages.
RoleParse parse_rule(std::span<const std::string_view> toks, size_t i, RoleCommand::Verb verb) {
  RoleParse r;
  RoleCommand& c = r.cmd;
  c.verb = verb;
  if (i < toks.size() && (toks[i] == "pref" || toks[i] == "prio")) {
    if (i + 1 >= toks.size()) return fail("pref: missing value");
    uint64_t v;
    std::string e;
    if (!parse_uint(toks[i + 1], 0xffffffffu, v, e)) return fail("pref: " + e);
    c.pref = static_cast<uint32_t>(v);
    i += 2;
  }
  if (verb == RoleCommand::Verb::del) {
    if (!c.pref) return fail("role del needs pref N");
    if (i < toks.size()) return fail("role del takes only pref N, got " + q(toks[i]));
    r.ok = true;
    return r;
  }
  if (verb == RoleCommand::Verb::replace && !c.pref) return fail("role replace needs pref N");
  if (i >= toks.size()) return fail("missing role (expected " + role_names() + ")");
  if (!traffic_role_from_string(toks[i], c.role))
    return fail("unknown role " + q(toks[i]) + " (expected " + role_names() + ")");
  ++i;
  bool any = false;
  std::string e;
  while (i < toks.size()) {
    if (toks[i] == "role") return fail("'role' is not a match here: the rule gives the role");
    const int mw = parse_match_word(toks, i, c.match, e);
    if (mw == 0) return fail(e);
    if (mw < 0)
      return fail("unknown word " + q(toks[i]) +
                  " (expected src, dst, sport, dport, port, proto, dscp, family or all)");
    any = true;
  }
  if (!any)
    return fail("role " + std::string(to_string(c.role)) +
                ": missing match (src, dst, sport, dport, port, proto, dscp, family or all)");
  if (auto ce = check_match(c.match); !ce.empty()) return fail(ce);
  r.ok = true;
  return r;
}

size_t skip_prefix(std::span<const std::string_view> t) {
  size_t i = 0;
  if (i < t.size() && (t[i] == "qos" || t[i] == "tc")) ++i;
  if (i < t.size() && t[i] == "role") ++i;
  return i;
}

}  // namespace

std::string RoleMap::add(const RoleRule& r) {
  if (n_ >= kMaxRules) return "role map full (" + std::to_string(kMaxRules) + " rules)";
  uint32_t at = n_;
  for (uint32_t i = 0; i < n_; ++i) {
    if (rules_[i].pref == r.pref)
      return "a role rule with pref " + std::to_string(r.pref) + " exists (use replace)";
    if (rules_[i].pref > r.pref && at == n_) at = i;
  }
  for (uint32_t i = n_; i > at; --i) rules_[i] = rules_[i - 1];
  rules_[at] = r;
  ++n_;
  return {};
}

std::string RoleMap::replace(const RoleRule& r) {
  for (uint32_t i = 0; i < n_; ++i)
    if (rules_[i].pref == r.pref) {
      rules_[i] = r;
      return {};
    }
  return "no role rule with pref " + std::to_string(r.pref);
}

bool RoleMap::remove(uint32_t pref) {
  for (uint32_t i = 0; i < n_; ++i)
    if (rules_[i].pref == pref) {
      for (uint32_t j = i + 1; j < n_; ++j) rules_[j - 1] = rules_[j];
      --n_;
      return true;
    }
  return false;
}

std::vector<RoleRule> default_role_rules(const RoleDefaultsInput& in) {
  std::vector<RoleRule> out;
  auto port_rule = [&](TrafficRole role, uint8_t proto, uint16_t port) {
    for (const RoleRule& r : out)  // one rule per (proto, port): the first role wins anyway
      if (r.match.proto == proto && r.match.port.lo == port) return;
    RoleRule r;
    r.role = role;
    r.match.fields = Match::kProto | Match::kPort;
    r.match.proto = proto;
    r.match.port = PortRange{port, port};
    out.push_back(r);
  };
  for (uint16_t p : in.heartbeat_udp_ports) port_rule(TrafficRole::heartbeat, kProtoUdp, p);
  for (uint16_t p : in.control_tcp_ports) port_rule(TrafficRole::heartbeat, kProtoTcp, p);
  port_rule(TrafficRole::svm_output, kProtoTcp, 9004);
  port_rule(TrafficRole::proxy, kProtoTcp, 9003);
  port_rule(TrafficRole::checkpoint, kProtoTcp, 9998);
  port_rule(TrafficRole::block_replication, kProtoTcp, 10809);
  port_rule(TrafficRole::block_replication, kProtoTcp, 9999);
  return out;
}

RoleParse parse_role_command(std::string_view line) {
  const std::vector<std::string_view> t = tokenize(line);
  size_t i = skip_prefix(t);
  if (i >= t.size()) return fail("role: missing verb (add, replace or del)");
  const std::string_view verb = t[i++];
  if (verb == "add") return parse_rule(t, i, RoleCommand::Verb::add);
  if (verb == "replace" || verb == "change") return parse_rule(t, i, RoleCommand::Verb::replace);
  if (verb == "del" || verb == "delete") return parse_rule(t, i, RoleCommand::Verb::del);
  return fail("unknown verb " + q(verb) + " (expected add, replace or del)");
}

RoleParse parse_role_line(std::string_view line) {
  const std::vector<std::string_view> t = tokenize(line);
  size_t i = skip_prefix(t);
  if (i < t.size() && t[i] == "add") ++i;
  if (i + 1 == t.size() && t[i] == "defaults") {
    RoleParse r;
    r.ok = r.defaults = true;
    return r;
  }
  return parse_rule(t, i, RoleCommand::Verb::add);
}

std::string apply_role_command(RoleMap& map, const RoleCommand& cmd) {
  switch (cmd.verb) {
    case RoleCommand::Verb::del:
      if (!map.remove(*cmd.pref)) return "no role rule with pref " + std::to_string(*cmd.pref);
      return {};
    case RoleCommand::Verb::replace:
      return map.replace(RoleRule{*cmd.pref, cmd.role, cmd.match});
    case RoleCommand::Verb::add:
      return map.add(RoleRule{cmd.pref ? *cmd.pref : map.next_pref(), cmd.role, cmd.match});
  }
  return "bad verb";
}

bool build_role_map(std::string_view script, std::span<const RoleRule> defaults, RoleMap& out,
                    std::string& error) {
  RoleMap next;
  bool any_line = false;
  size_t line_no = 0, b = 0;
  while (b <= script.size()) {
    size_t e = script.find('\n', b);
    if (e == std::string_view::npos) e = script.size();
    ++line_no;
    const std::string_view line = script.substr(b, e - b);
    b = e + 1;
    if (tokenize(line).empty()) continue;
    any_line = true;
    const std::string where = "line " + std::to_string(line_no) + ": ";
    RoleParse p = parse_role_line(line);
    if (!p.ok) {
      error = where + p.error;
      return false;
    }
    if (p.defaults) {
      for (RoleRule d : defaults) {
        d.pref = next.next_pref();
        if (auto err = next.add(d); !err.empty()) {
          error = where + err;
          return false;
        }
      }
      continue;
    }
    if (auto err = apply_role_command(next, p.cmd); !err.empty()) {
      error = where + err;
      return false;
    }
  }
  if (!any_line)
    for (RoleRule d : defaults) {
      d.pref = next.next_pref();
      if (auto err = next.add(d); !err.empty()) return error = err, false;
    }
  out = next;
  return true;
}

std::string format_role_rule(const RoleRule& r) {
  const std::string m = format_match(r.match);
  return "pref " + std::to_string(r.pref) + " " + std::string(to_string(r.role)) + " " +
         (m.empty() ? std::string("all") : m);
}

}  // namespace lockstep::sched
