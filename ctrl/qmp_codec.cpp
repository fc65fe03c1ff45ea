#include "ctrl/qmp_codec.h"

#include <cstring>

namespace lockstep::ctrl {

std::string_view to_string(QmpKind k) {
  switch (k) {
    case QmpKind::greeting: return "greeting";
    case QmpKind::reply: return "reply";
    case QmpKind::error: return "error";
    case QmpKind::event: return "event";
  }
  return "?";
}

void QmpDecoder::push(const void* data, size_t len) {
  if (dead_) return;
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  }
  buf_.append(static_cast<const char*>(data), len);
}

QmpStatus QmpDecoder::next(QmpMessage& out) {
  if (dead_) return QmpStatus::oversize;
  for (;;) {
    size_t nl = buf_.find('\n', pos_);
    if (nl == std::string::npos) {
      if (buf_.size() - pos_ > max_) {
        dead_ = true;
        error_ = "line longer than " + std::to_string(max_) + " bytes";
        return QmpStatus::oversize;
      }
      if (pos_ > 0) {
        buf_.erase(0, pos_);
        pos_ = 0;
      }
      return QmpStatus::need_more;
    }
    std::string_view line(buf_.data() + pos_, nl - pos_);
    pos_ = nl + 1;
    if (line.size() > max_) {
      dead_ = true;
      error_ = "line longer than " + std::to_string(max_) + " bytes";
      return QmpStatus::oversize;
    }
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    if (line.empty()) continue;  // blank lines carry nothing
    out = QmpMessage{};
    if (!decode_qmp(line, out, error_)) return QmpStatus::invalid;
    return QmpStatus::message;
  }
}

bool decode_qmp(std::string_view line, QmpMessage& out, std::string& error) {
  Json j;
  if (!parse_json_bounded(line, kQmpMaxDepth, j, error)) return false;
  if (!j.is_object()) {
    error = "not a JSON object";
    return false;
  }
  if (auto it = j.find("id"); it != j.end()) out.id = *it;
  if (auto it = j.find("QMP"); it != j.end()) {
    if (!it->is_object()) {
      error = "greeting: \"QMP\" is not an object";
      return false;
    }
    out.kind = QmpKind::greeting;
    out.value = *it;
    return true;
  }
  if (auto it = j.find("return"); it != j.end()) {
    out.kind = QmpKind::reply;
    out.value = *it;
    return true;
  }
  if (auto it = j.find("error"); it != j.end()) {
    if (!it->is_object()) {
      error = "error: not an object";
      return false;
    }
    out.kind = QmpKind::error;
    auto cls = it->find("class");
    auto desc = it->find("desc");
    out.error_class = cls != it->end() && cls->is_string() ? cls->get<std::string>() : "";
    out.error_desc = desc != it->end() && desc->is_string() ? desc->get<std::string>() : "";
    return true;
  }
  if (auto it = j.find("event"); it != j.end()) {
    if (!it->is_string()) {
      error = "event: name is not a string";
      return false;
    }
    out.kind = QmpKind::event;
    out.event = it->get<std::string>();
    if (auto d = j.find("data"); d != j.end()) out.value = *d;
    if (auto t = j.find("timestamp"); t != j.end() && t->is_object()) {
      auto s = t->find("seconds");
      auto us = t->find("microseconds");
      if (s != t->end() && s->is_number_unsigned() && us != t->end() && us->is_number_unsigned()) {
        out.timestamp_us = s->get<uint64_t>() * 1000000 + us->get<uint64_t>();
      }
    }
    return true;
  }
  error = "no QMP, return, error or event member";
  return false;
}

std::string encode_qmp_command(std::string_view name, const Json& args, uint64_t id) {
  Json j;
  j["execute"] = std::string(name);
  if (!args.is_null()) j["arguments"] = args;
  j["id"] = id;
  return j.dump() + "\n";
}

std::string qmp_version_text(const Json& version) {
  if (!version.is_object()) return "";
  auto q = version.find("qemu");
  if (q == version.end() || !q->is_object()) return "";
  auto num = [&](const char* k) {
    auto it = q->find(k);
    return it != q->end() && it->is_number_unsigned() ? std::to_string(it->get<uint64_t>()) : "?";
  };
  std::string s = num("major") + "." + num("minor") + "." + num("micro");
  auto p = version.find("package");
  if (p != version.end() && p->is_string() && !p->get<std::string>().empty()) {
    s += " (" + p->get<std::string>() + ")";
  }
  return s;
}

}  // namespace lockstep::ctrl
