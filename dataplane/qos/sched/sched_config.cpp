#include "dataplane/qos/sched/sched_config.h"

#include <algorithm>

namespace lockstep::sched {
namespace {

std::string q(std::string_view t) {
  std::string s;
  s.reserve(t.size() + 2);
  s += '\'';
  s += t;
  s += '\'';
  return s;
}

void merge(ClassParams& p, const ClassSpec& s) {
  if (s.prio) p.prio = *s.prio;
  if (s.rate) p.rate = *s.rate;
  if (s.ceil) p.ceil = *s.ceil;
  if (s.burst) p.burst = *s.burst;
  if (s.cburst) p.cburst = *s.cburst;
  if (s.conn_rate) p.conn_rate = *s.conn_rate;
  if (s.conn_burst) p.conn_burst = *s.conn_burst;
  if (s.limit) p.limit = *s.limit;
  if (s.limit_bytes) p.limit_bytes = *s.limit_bytes;
  if (s.conn_limit) p.conn_limit = *s.conn_limit;
  if (s.quantum) p.quantum = *s.quantum;
}

std::string check_rates(const QosConfig& c) {
  if (c.port.rate == 0) return {};
  uint64_t sum = 0;
  for (const ClassEntry& e : c.classes) {
    sum += e.params.rate;
    if (e.params.rate > c.port.rate)
      return "class " + q(e.name) + " rate " + format_rate(e.params.rate) +
             " is above the port rate " + format_rate(c.port.rate);
  }
  if (sum > c.port.rate)
    return "guaranteed rates add up to " + format_rate(sum) + ", above the port rate " +
           format_rate(c.port.rate);
  return {};
}

}  // namespace

QosConfig QosConfig::initial(std::string dev) {
  QosConfig c;
  c.dev = std::move(dev);
  c.classes.push_back(ClassEntry{kDefaultClassName, ClassParams{}});
  return c;
}

const ClassEntry* QosConfig::find_class(std::string_view name) const {
  for (const ClassEntry& e : classes)
    if (e.name == name) return &e;
  return nullptr;
}

std::string QosConfig::apply(const Command& c, const SchedConfig& limits) {
  if (c.dev != dev) return "device " + q(c.dev) + " has no scheduler here (this port is " + q(dev) + ")";
  QosConfig n = *this;
  switch (c.object) {
    case Object::qdisc: {
      if (c.verb == Verb::del) {
        if (!has_qdisc) return "no qdisc on " + q(dev);
        n = initial(dev);
        break;
      }
      if (c.verb == Verb::add && has_qdisc)
        return "qdisc already on " + q(dev) + " (use change or replace)";
      if (c.verb == Verb::change && !has_qdisc) return "no qdisc on " + q(dev) + " to change";
      if (c.verb != Verb::change && has_qdisc) n.port = PortParams{};  // replace: afresh
      n.has_qdisc = true;
      if (c.qdisc.rate) n.port.rate = *c.qdisc.rate;
      if (c.qdisc.burst) n.port.burst = *c.qdisc.burst;
      if (c.qdisc.default_class) {
        if (!n.find_class(*c.qdisc.default_class))
          return "default: class " + q(*c.qdisc.default_class) + " does not exist";
        n.default_class = *c.qdisc.default_class;
      }
      if (auto e = validate(limits, n.port); !e.empty()) return e;
      if (auto e = check_rates(n); !e.empty()) return e;
      break;
    }
    case Object::klass: {
      if (!has_qdisc) return "no qdisc on " + q(dev) + ": add one first (qdisc add " + dev + " rate ...)";
      const std::string& name = c.klass.name;
      auto it = std::find_if(n.classes.begin(), n.classes.end(),
                             [&](const ClassEntry& e) { return e.name == name; });
      const bool exists = it != n.classes.end();
      if (c.verb == Verb::del) {
        if (!exists) return "class " + q(name) + " does not exist";
        if (name == kDefaultClassName)
          return "class 'default' cannot be deleted (it takes traffic when no other class can)";
        if (name == n.default_class)
          return "class " + q(name) + " is the qdisc default: set another default first";
        std::string users;
        for (const FilterEntry& f : n.filters)
          if (f.class_name == name) {
            if (!users.empty()) users += ", ";
            users += std::to_string(f.pref);
          }
        if (!users.empty())
          return "class " + q(name) + " is used by filters with pref " + users + ": delete them first";
        n.classes.erase(it);
        break;
      }
      if (c.verb == Verb::add && exists) return "class " + q(name) + " already exists (use change)";
      if (c.verb == Verb::change && !exists) return "class " + q(name) + " does not exist";
      ClassParams p = exists ? it->params : ClassParams{};
      if (exists && c.verb == Verb::replace) p = ClassParams{};
      merge(p, c.klass);
      if (auto e = validate(limits, p); !e.empty()) return "class " + q(name) + ": " + e;
      if (exists) {
        it->params = p;
      } else {
        if (n.classes.size() >= limits.max_classes)
          return "no room for class " + q(name) + ": the port has " +
                 std::to_string(limits.max_classes) + " classes at most";
        n.classes.push_back(ClassEntry{name, p});
      }
      if (c.klass.make_default) n.default_class = name;
      if (auto e = check_rates(n); !e.empty()) return e;
      break;
    }
    case Object::filter: {
      if (!has_qdisc) return "no qdisc on " + q(dev) + ": add one first";
      const FilterSpec& f = c.filter;
      auto at = [&](uint32_t pref) {
        return std::find_if(n.filters.begin(), n.filters.end(),
                            [&](const FilterEntry& e) { return e.pref == pref; });
      };
      if (c.verb == Verb::del) {
        auto it = at(*f.pref);
        if (it == n.filters.end()) return "no filter with pref " + std::to_string(*f.pref);
        n.filters.erase(it);
        break;
      }
      if (!n.find_class(f.class_name)) return "class " + q(f.class_name) + " does not exist";
      uint32_t pref = 10;
      if (f.pref) {
        pref = *f.pref;
      } else {
        for (const FilterEntry& e : n.filters) pref = std::max(pref, e.pref + 10);
      }
      auto it = at(pref);
      if (it != n.filters.end()) {
        if (c.verb == Verb::add)
          return "a filter with pref " + std::to_string(pref) + " exists (use replace)";
        n.filters.erase(it);
      } else if (c.verb == Verb::change) {
        return "no filter with pref " + std::to_string(pref);
      }
      if (n.filters.size() >= Classifier::kMaxFilters)
        return "filter table full (" + std::to_string(Classifier::kMaxFilters) + ")";
      n.filters.push_back(FilterEntry{pref, f.match, f.class_name});
      std::sort(n.filters.begin(), n.filters.end(),
                [](const FilterEntry& a, const FilterEntry& b) { return a.pref < b.pref; });
      break;
    }
  }
  *this = std::move(n);
  return {};
}

std::string to_text(const ClassEntry& c, const std::string& dev, bool is_default) {
  const ClassParams& p = c.params;
  std::string s = "class add " + dev + " " + c.name + " prio " + std::to_string(p.prio);
  if (p.rate) s += " rate " + format_rate(p.rate);
  if (p.ceil) s += " ceil " + format_rate(p.ceil);
  if (p.burst) s += " burst " + format_size(p.burst);
  if (p.cburst) s += " cburst " + format_size(p.cburst);
  if (p.conn_rate) s += " conn-rate " + format_rate(p.conn_rate);
  if (p.conn_burst) s += " conn-burst " + format_size(p.conn_burst);
  if (p.limit) s += " limit " + std::to_string(p.limit);
  if (p.limit_bytes) s += " limit-bytes " + format_size(p.limit_bytes);
  if (p.conn_limit) s += " conn-limit " + std::to_string(p.conn_limit);
  if (p.quantum) s += " quantum " + format_size(p.quantum);
  if (is_default) s += " default";
  return s;
}

std::string to_text(const FilterEntry& f, const std::string& dev) {
  std::string m = format_match(f.match);
  return "filter add " + dev + " pref " + std::to_string(f.pref) + " " +
         (m.empty() ? "all" : m) + " class " + f.class_name;
}

std::vector<std::string> QosConfig::to_commands() const {
  std::vector<std::string> out;
  if (!has_qdisc) return out;
  std::string q = "qdisc add " + dev;
  if (port.rate) q += " rate " + format_rate(port.rate);
  if (port.burst) q += " burst " + format_size(port.burst);
  out.push_back(q);
  for (const ClassEntry& c : classes) {
    std::string line = to_text(c, dev, c.name == default_class && c.name != kDefaultClassName);
    if (c.name == kDefaultClassName) line.replace(0, 9, "class replace");
    out.push_back(line);
  }
  for (const FilterEntry& f : filters) out.push_back(to_text(f, dev));
  return out;
}

}  // namespace lockstep::sched
