#include "ctrl/qmp_session.h"

#include <algorithm>

namespace lockstep::ctrl {

namespace {
// For messages: never throws, whatever bytes QEMU's strings held.
std::string safe_dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }
}  // namespace

Json QmpCounters::to_json() const {
  Json j;
#define LOCKSTEP_X(name, help) j[#name] = name;
  LOCKSTEP_QMP_COUNTERS(LOCKSTEP_X)
#undef LOCKSTEP_X
  return j;
}

void QmpSession::reset(uint64_t now_ns) {
  greeted_ = up_ = stopped_ = resume_waiting_ = false;
  stop_queries_ = 0;
  pending_.clear();
  connected_ns_ = now_ns;
  next_poll_ns_ = 0;
  colo_mode_ = "unknown";
}

void QmpSession::send(std::string_view name, const Json& args, Purpose p, uint64_t now_ns,
                      std::vector<Output>& out) {
  uint64_t id = next_id_++;
  pending_[id] = Pending{p, now_ns, std::string(name)};
  ++c_.commands_sent;
  out.push_back({OutKind::send, encode_qmp_command(name, args, id)});
}

void QmpSession::on_message(const QmpMessage& m, uint64_t now_ns, std::vector<Output>& out) {
  switch (m.kind) {
    case QmpKind::greeting: {
      ++c_.greetings;
      if (greeted_) {
        out.push_back({OutKind::note, "second QMP greeting ignored"});
        return;
      }
      greeted_ = true;
      auto v = m.value.find("version");
      if (v != m.value.end()) version_ = qmp_version_text(*v);
      send("qmp_capabilities", Json(), Purpose::capabilities, now_ns, out);
      return;
    }
    case QmpKind::reply:
    case QmpKind::error: {
      ++c_.replies;
      if (m.kind == QmpKind::error && m.id.is_null()) {
        // QEMU could not read a command (whose answer would never come), or the libvirt
        // bridge (qmp_libvirt.h) says why it closes: either way the connection is done.
        ++c_.command_errors;
        out.push_back({OutKind::fail, m.error_class + ": " + m.error_desc});
        return;
      }
      uint64_t id = m.id.is_number_unsigned() ? m.id.get<uint64_t>() : 0;
      auto it = pending_.find(id);
      if (it == pending_.end()) {
        ++c_.unknown_replies;
        out.push_back({OutKind::note, "QMP reply with an unknown id " + safe_dump(m.id)});
        return;
      }
      Purpose p = it->second.purpose;
      std::string name = std::move(it->second.name);
      pending_.erase(it);
      if (p == Purpose::stop_colo_status && stop_queries_ > 0) --stop_queries_;
      if (m.kind == QmpKind::error) {
        ++c_.command_errors;
        out.push_back({OutKind::note, "QEMU refused " + name + ": " + m.error_class + ": " + m.error_desc});
        if (p == Purpose::capabilities) {
          out.push_back({OutKind::fail, "qmp_capabilities refused: " + m.error_desc});
        }
        if (p == Purpose::stop_colo_status && resume_waiting_ && stop_queries_ == 0) {
          resume_waiting_ = false;
          decide_pair(out);
        }
        return;
      }
      on_reply(m, p, now_ns, out);
      return;
    }
    case QmpKind::event:
      ++c_.events;
      on_event(m, now_ns, out);
      return;
  }
}

void QmpSession::on_reply(const QmpMessage& m, Purpose p, uint64_t now_ns, std::vector<Output>& out) {
  switch (p) {
    case Purpose::capabilities:
      up_ = true;
      out.push_back({OutKind::up, version_});
      send("query-version", Json(), Purpose::version, now_ns, out);
      send("query-colo-status", Json(), Purpose::colo_status, now_ns, out);
      next_poll_ns_ = now_ns + poll_ns_;
      return;
    case Purpose::version:
      if (auto v = qmp_version_text(m.value); !v.empty()) version_ = v;
      return;
    case Purpose::colo_status:
    case Purpose::stop_colo_status: {
      if (!m.value.is_object()) {
        out.push_back({OutKind::note, "query-colo-status: not an object"});
      } else {
        auto str = [&](const char* k) {
          auto it = m.value.find(k);
          return it != m.value.end() && it->is_string() ? it->get<std::string>() : std::string();
        };
        colo_mode_ = str("mode");
        colo_last_mode_ = str("last-mode");
        colo_reason_ = str("reason");
      }
      if (p == Purpose::stop_colo_status && resume_waiting_ && stop_queries_ == 0) {
        resume_waiting_ = false;
        decide_pair(out);
      }
      return;
    }
    case Purpose::read_delay: {
      auto it = m.value.is_object() ? m.value.find("x-checkpoint-delay") : m.value.end();
      if (it == m.value.end() || !it->is_number_unsigned()) {
        out.push_back({OutKind::note, "query-migrate-parameters: no x-checkpoint-delay"});
        return;
      }
      checkpoint_delay_ms_ = it->get<uint64_t>();
      ++c_.triggers;
      send("migrate-set-parameters", Json{{"x-checkpoint-delay", *checkpoint_delay_ms_}},
           Purpose::trigger, now_ns, out);
      return;
    }
    case Purpose::trigger:
    case Purpose::lost_heartbeat:
      return;
  }
}

void QmpSession::on_event(const QmpMessage& m, uint64_t now_ns, std::vector<Output>& out) {
  if (m.event == "STOP") {
    ++c_.stops;
    stopped_ = true;
    // Known to be in COLO: the checkpoint's start (QEMU's own periodic one when none was
    // asked for). Otherwise the pair is judged at its RESUME.
    if (colo_mode_ == "primary") out.push_back({OutKind::begin, ""});
    if (up_) {
      ++stop_queries_;
      send("query-colo-status", Json(), Purpose::stop_colo_status, now_ns, out);
    }
  } else if (m.event == "RESUME") {
    ++c_.resumes;
    if (!stopped_) return;  // a RESUME whose STOP came before this connection
    stopped_ = false;
    if (stop_queries_ > 0) {
      resume_waiting_ = true;  // decided when the STOP's query-colo-status answers
    } else {
      decide_pair(out);
    }
  } else if (m.event == "COLO_EXIT") {
    ++c_.colo_exits;
    std::string mode, reason;
    if (m.value.is_object()) {
      auto md = m.value.find("mode");
      auto rs = m.value.find("reason");
      if (md != m.value.end() && md->is_string()) mode = md->get<std::string>();
      if (rs != m.value.end() && rs->is_string()) reason = rs->get<std::string>();
    }
    last_exit_ = "mode " + mode + ", reason " + reason;
    colo_mode_ = "none";
    if (mode != "primary" && mode != "secondary") {
      out.push_back({OutKind::note, "COLO_EXIT without a known mode: " + safe_dump(m.value)});
      return;
    }
    out.push_back({OutKind::colo_exit, "QEMU COLO_EXIT (" + last_exit_ + ")",
                   mode == "primary" ? Survivor::primary : Survivor::secondary});
  }
}

void QmpSession::decide_pair(std::vector<Output>& out) {
  if (colo_mode_ == "primary") {
    ++c_.checkpoints_seen;
    out.push_back({OutKind::done, ""});
  } else {
    ++c_.stop_resume_outside_colo;
  }
}

void QmpSession::request_checkpoint(uint64_t now_ns, std::vector<Output>& out) {
  if (!up_) return;  // the FSM sends it again when the link comes up
  send("query-migrate-parameters", Json(), Purpose::read_delay, now_ns, out);
}

void QmpSession::lost_heartbeat(uint64_t now_ns, std::vector<Output>& out) {
  if (!up_) return;
  lost_heartbeat_asked_ = true;
  ++c_.lost_heartbeat_sent;
  send("x-colo-lost-heartbeat", Json(), Purpose::lost_heartbeat, now_ns, out);
}

void QmpSession::tick(uint64_t now_ns, std::vector<Output>& out) {
  if (!greeted_ && now_ns >= connected_ns_ + answer_timeout_ns_) {
    ++c_.answer_timeouts;
    out.push_back({OutKind::fail, "no QMP greeting from QEMU"});
    return;
  }
  for (const auto& [id, p] : pending_) {
    if (now_ns >= p.sent_ns + answer_timeout_ns_) {
      ++c_.answer_timeouts;
      out.push_back({OutKind::fail, "QEMU did not answer " + p.name + " (id " + std::to_string(id) + ") in time"});
      return;
    }
  }
  if (up_ && poll_ns_ != 0 && now_ns >= next_poll_ns_) {
    next_poll_ns_ = now_ns + poll_ns_;
    bool polling = std::any_of(pending_.begin(), pending_.end(),
                               [](const auto& kv) { return kv.second.purpose == Purpose::colo_status; });
    if (!polling) send("query-colo-status", Json(), Purpose::colo_status, now_ns, out);
  }
}

uint64_t QmpSession::next_deadline() const {
  uint64_t d = UINT64_MAX;
  if (!greeted_) d = connected_ns_ + answer_timeout_ns_;
  for (const auto& [id, p] : pending_) d = std::min(d, p.sent_ns + answer_timeout_ns_);
  if (up_ && poll_ns_ != 0) d = std::min(d, next_poll_ns_);
  return d;
}

Json QmpSession::status_json() const {
  Json j;
  j["version"] = version_;
  j["colo"] = {{"mode", colo_mode_}, {"last_mode", colo_last_mode_}, {"reason", colo_reason_}};
  if (checkpoint_delay_ms_) j["x_checkpoint_delay_ms"] = *checkpoint_delay_ms_;
  if (!last_exit_.empty()) j["last_colo_exit"] = last_exit_;
  j["pending_commands"] = pending_.size();
  j["counters"] = c_.to_json();
  return j;
}

}  // namespace lockstep::ctrl
