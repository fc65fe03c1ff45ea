#include "dataplane/qos/sched/qos_port.h"

namespace lockstep::sched {

QosPort::QosPort(std::string dev, const SchedConfig& cfg)
    : cfg_(QosConfig::initial(dev)), sched_(cfg) {
  sched_.add_class(0, cfg_.classes[0].params, 0);
  names_[0] = kDefaultClassName;
  classifier_.set_default(0);
}

ClassId QosPort::class_id(std::string_view name) const {
  for (uint32_t i = 0; i < kMaxClasses; ++i)
    if (!names_[i].empty() && names_[i] == name) return static_cast<ClassId>(i);
  return kNoClass;
}

const std::string& QosPort::class_name(ClassId id) const {
  static const std::string kNone;
  return id < kMaxClasses ? names_[id] : kNone;
}

std::string QosPort::apply(std::string_view command, uint64_t now_ns) {
  ParseResult r = parse_command(command);
  if (!r.ok) return r.error;
  return apply(r.cmd, now_ns);
}

std::string QosPort::apply(const Command& c, uint64_t now_ns) {
  QosConfig next = cfg_;
  if (auto e = next.apply(c, sched_.config()); !e.empty()) return e;
  return reconcile(next, now_ns);
}

std::string QosPort::apply_script(std::string_view text, uint64_t now_ns) {
  ScriptResult s = parse_script(text);
  if (!s.ok) return s.error;
  QosConfig next = cfg_;
  for (size_t i = 0; i < s.cmds.size(); ++i)
    if (auto e = next.apply(s.cmds[i], sched_.config()); !e.empty())
      return "line " + std::to_string(s.lines[i]) + ": " + e;
  return reconcile(next, now_ns);
}

std::string QosPort::reconcile(const QosConfig& target, uint64_t now_ns) {
  if (auto e = sched_.set_port(target.port, now_ns); !e.empty()) return e;
  // Backlog of deleted classes goes to the target's default class if it runs already,
  // else to "default", which always runs.
  ClassId sink = class_id(target.default_class);
  if (sink == kNoClass) sink = class_id(kDefaultClassName);
  for (uint32_t id = 0; id < kMaxClasses; ++id) {
    if (names_[id].empty() || target.find_class(names_[id])) continue;
    if (auto e = sched_.delete_class(static_cast<ClassId>(id), sink, now_ns); !e.empty()) return e;
    names_[id].clear();
  }
  for (const ClassEntry& c : target.classes) {
    const ClassId id = class_id(c.name);
    if (id != kNoClass) {
      if (auto e = sched_.change_class(id, c.params, now_ns); !e.empty()) return e;
      continue;
    }
    ClassId free_id = kNoClass;
    for (uint32_t i = 0; i < sched_.config().max_classes && free_id == kNoClass; ++i)
      if (names_[i].empty()) free_id = static_cast<ClassId>(i);
    if (free_id == kNoClass) return "no free class id for " + c.name;
    if (auto e = sched_.add_class(free_id, c.params, now_ns); !e.empty()) return e;
    names_[free_id] = c.name;
  }
  classifier_.clear();
  for (const FilterEntry& f : target.filters) {
    Filter flt;
    flt.pref = f.pref;
    flt.match = f.match;
    flt.cls = class_id(f.class_name);
    if (auto e = classifier_.add(flt); !e.empty()) return e;
  }
  classifier_.set_default(class_id(target.default_class));
  cfg_ = target;
  return {};
}

namespace {
std::string counters_text(const ClassCounters& c, uint32_t bpkts, uint64_t bbytes) {
  std::string s = " Sent " + std::to_string(c.deq_bytes) + " bytes " + std::to_string(c.deq_pkts) +
                  " pkt (dropped " + std::to_string(c.drops_total());
  for (unsigned r = 0; r < kDropCount; ++r)
    if (c.drops[r]) s += ", " + std::string(to_string(static_cast<Drop>(r))) + " " + std::to_string(c.drops[r]);
  s += ") borrowed " + std::to_string(c.borrowed_pkts) + " pkt";
  if (c.moved_in_pkts || c.moved_out_pkts)
    s += " moved in " + std::to_string(c.moved_in_pkts) + " out " + std::to_string(c.moved_out_pkts);
  s += "\n backlog " + std::to_string(bbytes) + "b " + std::to_string(bpkts) + "p";
  return s;
}
}  // namespace

std::string QosPort::show(bool stats, uint64_t now_ns) const {
  std::string s = "qdisc lockstep " + cfg_.dev + ": rate " +
                  (cfg_.port.rate ? format_rate(cfg_.port.rate) : std::string("unshaped"));
  if (cfg_.port.burst) s += " burst " + format_size(cfg_.port.burst);
  s += " default " + cfg_.default_class + "\n";
  if (stats) {
    const PortStats p = sched_.port_stats(now_ns);
    s += " Sent " + std::to_string(p.ctr.deq_bytes) + " bytes " + std::to_string(p.ctr.deq_pkts) +
         " pkt (dropped " + std::to_string(p.ctr.drops_total()) + ") backlog " +
         std::to_string(p.backlog_bytes) + "b " + std::to_string(p.backlog_pkts) + "p conns " +
         std::to_string(p.conns) + " evicted " + std::to_string(p.ctr.conns_evicted) + "\n";
  }
  for (const ClassEntry& c : cfg_.classes) {
    std::string line = to_text(c, cfg_.dev, c.name == cfg_.default_class);
    s += "class " + line.substr(line.find(' ', 6) + 1) + "\n";  // without the verb
    if (stats) {
      const ClassStats st = sched_.class_stats(class_id(c.name), now_ns);
      s += counters_text(st.ctr, st.backlog_pkts, st.backlog_bytes) + " conns " +
           std::to_string(st.conns) + " ready " + std::to_string(st.conns_ready) + " throttled " +
           std::to_string(st.conns_throttled) + " tokens " + std::to_string(st.tokens) +
           " ctokens " + std::to_string(st.ctokens) + "\n";
    }
  }
  for (const FilterEntry& f : cfg_.filters) {
    std::string line = to_text(f, cfg_.dev);
    s += "filter " + line.substr(line.find(' ', 7) + 1) + "\n";
  }
  return s;
}

}  // namespace lockstep::sched
