// The registry of ctrl commands (OVS unixctl / DPDK telemetry style): each command has a
// name (one or more words: "config set"), usage, help, arity, whether it changes state,
// and a handler returning JSON or an error. `help`, `list-commands` are built in.
// Pure dispatch: no I/O here; ctrl_server.h carries requests to it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <sys/types.h>
#include <vector>

#include "ctrl/json_limits.h"

namespace lockstep::ctrl {

struct PeerCred {
  pid_t pid = 0;
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
};

struct CommandContext {
  bool read_only = false;  // the request came over the read-only socket
  PeerCred cred;
  uint64_t now_ns = 0;
};

struct CommandResult {
  bool ok = true;
  Json result;        // ok: the command's output
  std::string error;  // !ok: why (the usage is added by the registry for arity errors)

  static CommandResult success(Json j = Json::object()) { return {true, std::move(j), {}}; }
  static CommandResult failure(std::string e) { return {false, nullptr, std::move(e)}; }
};

using Args = std::vector<std::string>;
using CommandHandler = std::function<CommandResult(const CommandContext&, const Args&)>;

struct CommandSpec {
  std::string name;   // "status", "config set"
  std::string usage;  // arguments only: "key=value..."
  std::string help;   // one line
  int min_args = 0;
  int max_args = 0;   // -1: unbounded
  bool mutating = false;
  CommandHandler handler;
  // Changes state only when given arguments (`stats --reset`, `checkpoint-policy K=V`).
  bool mutating_with_args = false;

  bool changes_state(size_t nargs) const { return mutating || (mutating_with_args && nargs > 0); }
};

class CommandRegistry {
 public:
  CommandRegistry();

  // False when the name is taken or empty.
  bool add(CommandSpec spec);
  const CommandSpec* find(const std::string& name) const;

  // Resolves the longest registered name that is a prefix of `words` (words joined by
  // single spaces); `consumed` is how many words it took.
  const CommandSpec* resolve(const std::vector<std::string>& words, size_t& consumed) const;

  // Resolves, checks arity and the read-only rule, runs the handler (an exception in a
  // handler becomes an error result, never a crash).
  // `nargs` receives the number of arguments after the command's name.
  CommandResult execute(const CommandContext& ctx, const std::vector<std::string>& words,
                        const CommandSpec** resolved = nullptr, size_t* nargs = nullptr) const;

  Json list_json() const;
  Json help_json(const std::string& name) const;

  // Many guests: `-g NAME`, `--guest NAME` or `--guest=NAME` among a command's words
  // names the guest it is for. The selector is told the name before the handler runs and
  // "" after it; false + error refuses the command (no such guest). Without a selector,
  // naming a guest is refused.
  using GuestSelector = std::function<bool(const std::string& name, std::string& error)>;
  void set_guest_selector(GuestSelector s) { guest_selector_ = std::move(s); }

 private:
  CommandResult run(const CommandContext& ctx, const std::vector<std::string>& words,
                    const CommandSpec** resolved, size_t* nargs) const;
  std::map<std::string, CommandSpec> commands_;
  GuestSelector guest_selector_;
};

}  // namespace lockstep::ctrl
