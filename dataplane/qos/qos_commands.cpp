#include "dataplane/qos/qos_commands.h"

namespace lockstep::ctrl {
namespace {

// The device argument: the word after the verb, or after "dev".
bool port_of(const Args& a, std::string& port) {
  if (a.size() < 2) return false;
  if (a[1] == "dev") {
    if (a.size() < 3) return false;
    port = a[2];
  } else {
    port = a[1];
  }
  return true;
}

CommandHandler object_handler(QosControl& qos, const char* object) {
  return [&qos, object](const CommandContext&, const Args& a) {
    std::string port;
    if (!port_of(a, port)) return CommandResult::failure(std::string(object) + ": missing port");
    std::string line = object;
    for (const auto& w : a) line += " " + w;
    Json result = Json::object();
    std::string error;
    if (!qos.apply(port, line, result, error)) return CommandResult::failure(error);
    result["command"] = line;
    return CommandResult::success(result);
  };
}

}  // namespace

void register_qos_commands(CommandRegistry& reg, QosControl& qos) {
  reg.add({"qos qdisc", "add|change|replace|del [dev] PORT [rate RATE] [burst SIZE] [default CLASS]",
           "the port's scheduler: its rate (shapes to the link's speed) and default class", 2, -1,
           true, object_handler(qos, "qdisc")});
  reg.add({"qos class",
           "add|change|replace|del [dev] PORT NAME [prio 0-7] [rate RATE] [ceil RATE] [burst SIZE] "
           "[cburst SIZE] [conn-rate RATE] [conn-burst SIZE] [limit N] [limit-bytes SIZE] "
           "[conn-limit N] [quantum SIZE] [default]",
           "a scheduling class: strict priority, guaranteed rate, ceiling, per-connection "
           "throttle; live, no packet lost (a deleted class's backlog moves to the default)",
           3, -1, true, object_handler(qos, "class")});
  reg.add({"qos filter",
           "add|replace|del [dev] PORT [pref N] [src P] [dst P] [sport R] [dport R] [port R] "
           "[proto P] [dscp D] [family F] [role ROLE] [all] class NAME",
           "map packets to a class (first match by pref wins; else the default class)", 2, -1,
           true, object_handler(qos, "filter")});
  reg.add({"qos role",
           "add [pref N] ROLE MATCH... | replace pref N ROLE MATCH... | del pref N  (ROLE: "
           "proxy svm_output checkpoint block_replication heartbeat other; MATCH: [src P] [dst P] "
           "[sport R] [dport R] [port R] [proto P] [dscp D] [family F] [all])",
           "the role map: which role frames between the hosts get (for `filter ... role ROLE`); "
           "first match by pref wins, else other",
           2, -1, true, [&qos](const CommandContext&, const Args& a) {
             std::string line = "role";
             for (const auto& w : a) line += " " + w;
             Json result = Json::object();
             std::string error;
             if (!qos.apply_role(line, result, error)) return CommandResult::failure(error);
             result["command"] = line;
             return CommandResult::success(result);
           }});
  reg.add({"qos roles", "", "the role map's rules, first match by pref", 0, 0, false,
           [&qos](const CommandContext&, const Args&) {
             Json result = Json::object();
             std::string error;
             if (!qos.roles(result, error)) return CommandResult::failure(error);
             return CommandResult::success(result);
           }});
  reg.add({"qos show", "[-s] [PORT]",
           "the schedulers' classes and filters; -s adds counters (sent, dropped per reason, "
           "backlog, borrowed, connections)",
           0, 2, false, [&qos](const CommandContext&, const Args& a) {
             bool stats = false;
             std::vector<std::string> ports;
             for (const auto& w : a) {
               if (w == "-s" || w == "--stats") stats = true;
               else if (!w.empty() && w[0] == '-') return CommandResult::failure("unknown option '" + w + "'");
               else ports.push_back(w);
             }
             if (ports.empty()) ports = qos.ports();
             Json out = Json::object();
             Json list = Json::array();
             std::string text;
             for (const auto& p : ports) {
               Json one;
               std::string error;
               if (!qos.show(p, stats, one, error)) return CommandResult::failure(error);
               if (one.contains("text") && one["text"].is_string()) text += one["text"].get<std::string>();
               list.push_back(std::move(one));
             }
             out["ports"] = std::move(list);
             out["text"] = text.empty() ? std::string("no port carries a scheduler\n") : text;
             return CommandResult::success(out);
           }});
}

}  // namespace lockstep::ctrl
