#include "dataplane/qos/sched/spec.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>

#include "dataplane/qos/sched/scheduler.h"

namespace lockstep::sched {
namespace {

bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string q(std::string_view t) {
  std::string s;
  s.reserve(t.size() + 2);
  s += '\'';
  s += t;
  s += '\'';
  return s;
}

// "1.5" + rest -> value and unit text. False when there is no number.
bool split_number(std::string_view tok, long double& v, std::string_view& unit) {
  size_t i = 0;
  uint64_t ip = 0;
  bool digits = false;
  while (i < tok.size() && tok[i] >= '0' && tok[i] <= '9') {
    if (ip > 100000000000000000ull) return false;
    ip = ip * 10 + static_cast<uint64_t>(tok[i] - '0');
    ++i;
    digits = true;
  }
  long double frac = 0, scale = 1;
  if (i < tok.size() && tok[i] == '.') {
    ++i;
    while (i < tok.size() && tok[i] >= '0' && tok[i] <= '9') {
      if (scale < 1e18L) {
        scale *= 10;
        frac += static_cast<long double>(tok[i] - '0') / scale;
      }
      ++i;
      digits = true;
    }
  }
  if (!digits) return false;
  v = static_cast<long double>(ip) + frac;
  unit = tok.substr(i);
  return true;
}

struct Unit {
  const char* name;
  long double mult;
};

constexpr long double kKi = 1024.0L;
constexpr Unit kRateUnits[] = {
    {"", 1}, {"bit", 1}, {"kbit", 1e3L}, {"mbit", 1e6L}, {"gbit", 1e9L}, {"tbit", 1e12L},
    {"kibit", kKi}, {"mibit", kKi * kKi}, {"gibit", kKi * kKi * kKi},
    {"tibit", kKi * kKi * kKi * kKi}, {"bps", 8}, {"kbps", 8e3L}, {"mbps", 8e6L},
    {"gbps", 8e9L}, {"tbps", 8e12L}, {"kibps", 8 * kKi}, {"mibps", 8 * kKi * kKi},
    {"gibps", 8 * kKi * kKi * kKi}, {"tibps", 8 * kKi * kKi * kKi * kKi},
};
constexpr Unit kSizeUnits[] = {  // in bytes
    {"", 1}, {"b", 1}, {"k", kKi}, {"kb", kKi}, {"m", kKi * kKi}, {"mb", kKi * kKi},
    {"g", kKi * kKi * kKi}, {"gb", kKi * kKi * kKi}, {"kbit", kKi / 8},
    {"mbit", kKi * kKi / 8}, {"gbit", kKi * kKi * kKi / 8},
};

constexpr const char* kRateHelp =
    "a number with a unit: bit kbit mbit gbit tbit kibit mibit gibit tibit bps kbps mbps "
    "gbps tbps (bare: bits/s)";
constexpr const char* kSizeHelp = "a number with a unit: b k m g kbit mbit gbit (bare: bytes)";

bool valid_name(std::string_view n) {
  if (n.empty() || n.size() > 31) return false;
  for (char c : n)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '_' || c == '-' || c == '.' || c == ':'))
      return false;
  return true;
}

}  // namespace

std::vector<std::string_view> tokenize(std::string_view line) {
  std::vector<std::string_view> out;
  if (const size_t h = line.find('#'); h != std::string_view::npos) line = line.substr(0, h);
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' ||
                               line[i] == '\n'))
      ++i;
    const size_t b = i;
    while (i < line.size() && !(line[i] == ' ' || line[i] == '\t' || line[i] == '\r' ||
                                line[i] == '\n'))
      ++i;
    if (i > b) out.push_back(line.substr(b, i - b));
  }
  return out;
}

bool parse_rate(std::string_view tok, uint64_t& out, std::string& err) {
  long double v;
  std::string_view unit;
  if (split_number(tok, v, unit)) {
    for (const Unit& u : kRateUnits)
      if (iequal(unit, u.name)) {
        const long double bytes = std::round(v * u.mult / 8.0L);
        if (bytes < static_cast<long double>(kTbMinRate) ||
            bytes > static_cast<long double>(kTbMaxRate)) {
          err = "rate " + q(tok) + " out of range 8kbit..10tbit";
          return false;
        }
        out = static_cast<uint64_t>(bytes);
        return true;
      }
  }
  err = "bad rate " + q(tok) + ": expected " + kRateHelp;
  return false;
}

bool parse_size(std::string_view tok, uint64_t& out, std::string& err) {
  long double v;
  std::string_view unit;
  if (split_number(tok, v, unit)) {
    for (const Unit& u : kSizeUnits)
      if (iequal(unit, u.name)) {
        const long double bytes = std::round(v * u.mult);
        if (bytes < 1 || bytes > static_cast<long double>(kTbMaxDepth)) {
          err = "size " + q(tok) + " out of range 1b..1g";
          return false;
        }
        out = static_cast<uint64_t>(bytes);
        return true;
      }
  }
  err = "bad size " + q(tok) + ": expected " + kSizeHelp;
  return false;
}

bool parse_uint(std::string_view tok, uint64_t max, uint64_t& out, std::string& err) {
  uint64_t v = 0;
  bool ok = !tok.empty() && tok.size() <= 19;
  for (char c : tok) {
    if (c < '0' || c > '9') ok = false;
    if (ok) v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (!ok) {
    err = "bad number " + q(tok);
    return false;
  }
  if (v > max) {
    err = q(tok) + " out of range 0.." + std::to_string(max);
    return false;
  }
  out = v;
  return true;
}

bool parse_prefix(std::string_view tok, IpPrefix& out, std::string& err) {
  std::string_view addr = tok;
  std::string_view len_text;
  if (const size_t s = tok.find('/'); s != std::string_view::npos) {
    addr = tok.substr(0, s);
    len_text = tok.substr(s + 1);
  }
  char buf[64];
  if (addr.empty() || addr.size() >= sizeof buf) {
    err = "bad address " + q(tok);
    return false;
  }
  std::memcpy(buf, addr.data(), addr.size());
  buf[addr.size()] = 0;
  IpAddr a;
  bool v4 = false;
  uint8_t b4[4];
  if (inet_pton(AF_INET, buf, b4) == 1) {
    v4 = true;
    a = IpAddr::v4((uint32_t{b4[0]} << 24) | (uint32_t{b4[1]} << 16) | (uint32_t{b4[2]} << 8) | b4[3]);
  } else if (inet_pton(AF_INET6, buf, a.b.data()) != 1) {
    err = "bad address " + q(tok) + ": expected IPv4 or IPv6, optionally /LEN";
    return false;
  }
  uint64_t len = v4 ? 32 : 128;
  if (!len_text.empty() || tok.back() == '/') {
    std::string e;
    if (!parse_uint(len_text, v4 ? 32 : 128, len, e)) {
      err = "bad prefix length in " + q(tok) + ": " + e;
      return false;
    }
  }
  out = IpPrefix::make(a, static_cast<uint8_t>(len), v4);
  return true;
}

bool parse_port_range(std::string_view tok, PortRange& out, std::string& err) {
  std::string_view lo = tok, hi = tok;
  if (const size_t d = tok.find('-'); d != std::string_view::npos) {
    lo = tok.substr(0, d);
    hi = tok.substr(d + 1);
  }
  uint64_t a, b;
  std::string e;
  if (!parse_uint(lo, 65535, a, e) || !parse_uint(hi, 65535, b, e)) {
    err = "bad port " + q(tok) + ": expected P or P-P with 0..65535";
    return false;
  }
  if (a > b) {
    err = "bad port range " + q(tok) + ": low end above high end";
    return false;
  }
  out.lo = static_cast<uint16_t>(a);
  out.hi = static_cast<uint16_t>(b);
  return true;
}

bool parse_proto(std::string_view tok, uint8_t& out, std::string& err) {
  static constexpr struct {
    const char* name;
    uint8_t num;
  } kNames[] = {{"tcp", 6}, {"udp", 17}, {"icmp", 1}, {"icmpv6", 58}, {"ipv6-icmp", 58},
                {"sctp", 132}, {"gre", 47}, {"esp", 50}, {"ah", 51}};
  for (const auto& n : kNames)
    if (iequal(tok, n.name)) {
      out = n.num;
      return true;
    }
  uint64_t v;
  std::string e;
  if (parse_uint(tok, 255, v, e)) {
    out = static_cast<uint8_t>(v);
    return true;
  }
  err = "bad protocol " + q(tok) + ": expected tcp udp icmp icmpv6 sctp gre esp ah or 0..255";
  return false;
}

namespace {
bool parse_one_dscp(std::string_view t, uint8_t& d) {
  if (iequal(t, "ef")) return d = 46, true;
  if (iequal(t, "va")) return d = 44, true;
  if (iequal(t, "le")) return d = 1, true;
  if (iequal(t, "be") || iequal(t, "default")) return d = 0, true;
  if (t.size() == 3 && (t[0] == 'c' || t[0] == 'C') && (t[1] == 's' || t[1] == 'S') &&
      t[2] >= '0' && t[2] <= '7')
    return d = static_cast<uint8_t>((t[2] - '0') * 8), true;
  if (t.size() == 4 && (t[0] == 'a' || t[0] == 'A') && (t[1] == 'f' || t[1] == 'F') &&
      t[2] >= '1' && t[2] <= '4' && t[3] >= '1' && t[3] <= '3')
    return d = static_cast<uint8_t>((t[2] - '0') * 8 + (t[3] - '0') * 2), true;
  if (t.size() > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) {
    unsigned v = 0;
    for (char c : t.substr(2)) {
      int x = (c >= '0' && c <= '9') ? c - '0'
            : (c >= 'a' && c <= 'f') ? c - 'a' + 10
            : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
      if (x < 0) return false;
      v = v * 16 + static_cast<unsigned>(x);
      if (v > 63) return false;
    }
    return d = static_cast<uint8_t>(v), true;
  }
  uint64_t v;
  std::string e;
  if (parse_uint(t, 63, v, e)) return d = static_cast<uint8_t>(v), true;
  return false;
}
}  // namespace

bool parse_dscp_set(std::string_view tok, uint64_t& set, std::string& err) {
  set = 0;
  size_t b = 0;
  while (b <= tok.size()) {
    size_t e = tok.find(',', b);
    if (e == std::string_view::npos) e = tok.size();
    uint8_t d;
    if (!parse_one_dscp(tok.substr(b, e - b), d)) {
      err = "bad dscp " + q(tok.substr(b, e - b)) +
            ": expected 0..63, 0x0..0x3f, ef, va, le, be, cs0..cs7 or af11..af43";
      return false;
    }
    set |= uint64_t{1} << d;
    b = e + 1;
  }
  return true;
}

// ---------------------------------------------------------------- formatting

std::string format_rate(uint64_t bps) {
  const uint64_t bits = bps * 8;
  static constexpr struct {
    uint64_t div;
    const char* unit;
  } kU[] = {{1000000000000ull, "tbit"}, {1000000000ull, "gbit"}, {1000000ull, "mbit"},
            {1000ull, "kbit"}};
  for (const auto& u : kU)
    if (bits >= u.div && bits % u.div == 0) return std::to_string(bits / u.div) + u.unit;
  return std::to_string(bits) + "bit";
}

std::string format_size(uint64_t bytes) {
  static constexpr struct {
    uint64_t div;
    const char* unit;
  } kU[] = {{1ull << 30, "g"}, {1ull << 20, "m"}, {1ull << 10, "k"}};
  for (const auto& u : kU)
    if (bytes >= u.div && bytes % u.div == 0) return std::to_string(bytes / u.div) + u.unit;
  return std::to_string(bytes) + "b";
}

std::string format_prefix(const IpPrefix& p) {
  const IpAddr a = p.network();
  char buf[INET6_ADDRSTRLEN];
  if (p.v4) {
    const uint8_t b4[4] = {a.b[12], a.b[13], a.b[14], a.b[15]};
    inet_ntop(AF_INET, b4, buf, sizeof buf);
  } else {
    inet_ntop(AF_INET6, a.b.data(), buf, sizeof buf);
  }
  return std::string(buf) + "/" + std::to_string(p.len);
}

namespace {
std::string format_range(const PortRange& r) {
  return r.lo == r.hi ? std::to_string(r.lo) : std::to_string(r.lo) + "-" + std::to_string(r.hi);
}
}  // namespace

std::string format_match(const Match& m) {
  std::string s;
  auto add = [&](const std::string& k, const std::string& v) {
    if (!s.empty()) s += ' ';
    s += k + " " + v;
  };
  if (m.fields & Match::kGuest) add("guest", std::string(m.guest_name.data()));
  if (m.fields & Match::kRole) add("role", std::string(to_string(m.role)));
  if (m.fields & Match::kFamily) add("family", m.family_v6 ? "ipv6" : "ipv4");
  if (m.fields & Match::kProto) add("proto", std::to_string(m.proto));
  if (m.fields & Match::kSrc) add("src", format_prefix(m.src));
  if (m.fields & Match::kDst) add("dst", format_prefix(m.dst));
  if (m.fields & Match::kSport) add("sport", format_range(m.sport));
  if (m.fields & Match::kDport) add("dport", format_range(m.dport));
  if (m.fields & Match::kPort) add("port", format_range(m.port));
  if (m.fields & Match::kDscp) {
    std::string v;
    for (unsigned d = 0; d < 64; ++d)
      if (m.dscp_set & (uint64_t{1} << d)) {
        if (!v.empty()) v += ',';
        v += std::to_string(d);
      }
    add("dscp", v);
  }
  return s;
}

std::string_view to_string(Object o) {
  switch (o) {
    case Object::qdisc: return "qdisc";
    case Object::klass: return "class";
    case Object::filter: return "filter";
  }
  return "?";
}

std::string_view to_string(Verb v) {
  switch (v) {
    case Verb::add: return "add";
    case Verb::change: return "change";
    case Verb::replace: return "replace";
    case Verb::del: return "del";
  }
  return "?";
}

// ---------------------------------------------------------------- commands

namespace {

struct Cursor {
  std::vector<std::string_view> t;
  size_t i = 0;
  bool done() const { return i >= t.size(); }
  std::string_view next() { return t[i++]; }
};

ParseResult fail(std::string e) {
  ParseResult r;
  r.error = std::move(e);
  return r;
}

// Takes the value after keyword `k`, or fails with "K: missing value".
bool value_of(Cursor& c, std::string_view k, std::string_view& v, std::string& err) {
  if (c.done()) {
    err = std::string(k) + ": missing value";
    return false;
  }
  v = c.next();
  return true;
}

template <class T>
bool once(std::optional<T>& slot, std::string_view k, std::string& err) {
  if (slot.has_value()) {
    err = q(k) + " given twice";
    return false;
  }
  return true;
}

bool parse_qdisc(Cursor& c, Command& cmd, std::string& err) {
  if (cmd.verb == Verb::del) {
    if (!c.done()) return err = "qdisc del takes no options, got " + q(c.t[c.i]), false;
    return true;
  }
  QdiscSpec& s = cmd.qdisc;
  while (!c.done()) {
    const std::string_view k = c.next();
    std::string_view v;
    if (k == "rate") {
      uint64_t x;
      if (!once(s.rate, k, err) || !value_of(c, k, v, err) || !parse_rate(v, x, err)) return false;
      s.rate = x;
    } else if (k == "burst") {
      uint64_t x;
      if (!once(s.burst, k, err) || !value_of(c, k, v, err) || !parse_size(v, x, err)) return false;
      s.burst = x;
    } else if (k == "default") {
      if (!once(s.default_class, k, err) || !value_of(c, k, v, err)) return false;
      if (!valid_name(v)) return err = "bad class name " + q(v), false;
      s.default_class = std::string(v);
    } else {
      err = "unknown word " + q(k) + " in qdisc " + std::string(to_string(cmd.verb)) +
            " (expected rate, burst or default)";
      return false;
    }
  }
  return true;
}

constexpr const char* kClassWords =
    "prio, rate, ceil, burst, cburst, conn-rate, conn-burst, limit, limit-bytes, conn-limit, "
    "quantum or default";

bool parse_class(Cursor& c, Command& cmd, std::string& err) {
  ClassSpec& s = cmd.klass;
  if (c.done()) return err = "class " + std::string(to_string(cmd.verb)) + ": missing class name", false;
  const std::string_view name = c.next();
  if (!valid_name(name))
    return err = "bad class name " + q(name) + " (1-31 of A-Z a-z 0-9 _ - . :)", false;
  s.name = std::string(name);
  if (cmd.verb == Verb::del) {
    if (!c.done()) return err = "class del takes only a name, got " + q(c.t[c.i]), false;
    return true;
  }
  while (!c.done()) {
    const std::string_view k = c.next();
    std::string_view v;
    uint64_t x;
    auto rate = [&](std::optional<uint64_t>& slot) {
      if (!once(slot, k, err) || !value_of(c, k, v, err)) return false;
      if (!parse_rate(v, x, err)) return err = std::string(k) + ": " + err, false;
      slot = x;
      return true;
    };
    auto size = [&](std::optional<uint64_t>& slot) {
      if (!once(slot, k, err) || !value_of(c, k, v, err)) return false;
      if (!parse_size(v, x, err)) return err = std::string(k) + ": " + err, false;
      slot = x;
      return true;
    };
    auto count = [&](std::optional<uint32_t>& slot, uint64_t max) {
      if (!once(slot, k, err) || !value_of(c, k, v, err)) return false;
      if (!parse_uint(v, max, x, err)) return err = std::string(k) + ": " + err, false;
      slot = static_cast<uint32_t>(x);
      return true;
    };
    bool ok;
    if (k == "prio") {
      ok = once(s.prio, k, err) && value_of(c, k, v, err);
      if (ok && !parse_uint(v, kMaxPrio, x, err)) ok = (err = "prio: " + err, false);
      if (ok) s.prio = static_cast<uint8_t>(x);
    } else if (k == "rate") ok = rate(s.rate);
    else if (k == "ceil") ok = rate(s.ceil);
    else if (k == "conn-rate") ok = rate(s.conn_rate);
    else if (k == "burst" || k == "buffer") ok = size(s.burst);
    else if (k == "cburst" || k == "cbuffer") ok = size(s.cburst);
    else if (k == "conn-burst") ok = size(s.conn_burst);
    else if (k == "limit-bytes") ok = size(s.limit_bytes);
    else if (k == "limit") ok = count(s.limit, 1u << 26);
    else if (k == "conn-limit") ok = count(s.conn_limit, 1u << 26);
    else if (k == "quantum") {
      std::optional<uint64_t> qv;
      ok = size(qv);
      if (ok) s.quantum = static_cast<uint32_t>(*qv);
    } else if (k == "default") {
      ok = !s.make_default || (err = "'default' given twice", false);
      s.make_default = true;
    } else {
      err = "unknown word " + q(k) + " in class " + std::string(to_string(cmd.verb)) +
            " (expected " + kClassWords + ")";
      return false;
    }
    if (!ok) return false;
  }
  return true;
}

constexpr const char* kFilterWords =
    "pref, src, dst, sport, dport, port, proto, dscp, family, role, guest, all, then class NAME";

struct GuestNamesState {
  std::span<const std::string> names;
  bool any = false, set = false;
};
thread_local GuestNamesState t_guests;

bool valid_guest_name(std::string_view n) {
  if (n.empty() || n.size() > kMaxGuestName) return false;
  for (char ch : n)
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_')) return false;
  return true;
}

bool parse_guest(std::string_view v, Match& m, std::string& err) {
  if (!valid_guest_name(v)) {
    err = "guest: bad name " + q(v) + " (1 to 32 letters, digits, '-' or '_')";
    return false;
  }
  for (size_t g = 0; g < t_guests.names.size(); ++g) {
    if (t_guests.names[g] != v) continue;
    m.guest = static_cast<uint16_t>(g);
    std::copy(v.begin(), v.end(), m.guest_name.begin());
    m.guest_name[v.size()] = '\0';
    return true;
  }
  if (t_guests.any) {
    m.guest = kNoGuest;
    std::copy(v.begin(), v.end(), m.guest_name.begin());
    m.guest_name[v.size()] = '\0';
    return true;
  }
  std::string known;
  for (const auto& n : t_guests.names) known += (known.empty() ? "" : ", ") + n;
  err = "guest: unknown guest " + q(v) +
        (known.empty() ? std::string(" (no guests known here)") : " (guests: " + known + ")");
  return false;
}

}  // namespace

GuestNamesScope::GuestNamesScope(std::span<const std::string> names, bool any_name)
    : prev_names_(t_guests.names), prev_any_(t_guests.any), prev_set_(t_guests.set) {
  t_guests = GuestNamesState{names, any_name, true};
}

GuestNamesScope::~GuestNamesScope() { t_guests = GuestNamesState{prev_names_, prev_any_, prev_set_}; }

int parse_match_word(std::span<const std::string_view> toks, size_t& i, Match& m,
                     std::string& err) {
  if (i >= toks.size()) return -1;
  const std::string_view k = toks[i];
  std::string_view v;
  auto field = [&](uint32_t bit) {
    if (m.fields & bit) return err = q(k) + " given twice", false;
    m.fields |= bit;
    if (i + 1 >= toks.size()) return err = std::string(k) + ": missing value", false;
    v = toks[i + 1];
    return true;
  };
  auto wrap = [&](bool ok) {
    if (!ok) err = std::string(k) + ": " + err;
    return ok;
  };
  bool ok;
  if (k == "src") ok = field(Match::kSrc) && wrap(parse_prefix(v, m.src, err));
  else if (k == "dst") ok = field(Match::kDst) && wrap(parse_prefix(v, m.dst, err));
  else if (k == "sport") ok = field(Match::kSport) && wrap(parse_port_range(v, m.sport, err));
  else if (k == "dport") ok = field(Match::kDport) && wrap(parse_port_range(v, m.dport, err));
  else if (k == "port") ok = field(Match::kPort) && wrap(parse_port_range(v, m.port, err));
  else if (k == "proto" || k == "ip_proto") ok = field(Match::kProto) && wrap(parse_proto(v, m.proto, err));
  else if (k == "dscp") ok = field(Match::kDscp) && wrap(parse_dscp_set(v, m.dscp_set, err));
  else if (k == "family") {
    ok = field(Match::kFamily);
    if (ok) {
      if (v == "ipv4" || v == "ip" || v == "inet") m.family_v6 = false;
      else if (v == "ipv6" || v == "inet6") m.family_v6 = true;
      else ok = (err = "family: bad value " + q(v) + " (expected ipv4 or ipv6)", false);
    }
  } else if (k == "role") {
    ok = field(Match::kRole);
    if (ok && !traffic_role_from_string(v, m.role)) {
      std::string all;
      for (unsigned r = 0; r < kTrafficRoleCount; ++r) {
        if (r) all += ' ';
        all += to_string(static_cast<TrafficRole>(r));
      }
      ok = (err = "role: unknown role " + q(v) + " (expected " + all + ")", false);
    }
  } else if (k == "guest") {
    ok = field(Match::kGuest) && parse_guest(v, m, err);
  } else if (k == "all" || k == "matchall") {
    ++i;
    return 1;
  } else {
    return -1;
  }
  if (!ok) return 0;
  i += 2;
  return 1;
}

std::string check_match(const Match& m) {
  if ((m.fields & (Match::kSrc | Match::kDst)) == (Match::kSrc | Match::kDst) &&
      m.src.v4 != m.dst.v4)
    return "src and dst are of different address families";
  if ((m.fields & Match::kFamily) &&
      (((m.fields & Match::kSrc) && m.src.v4 == m.family_v6) ||
       ((m.fields & Match::kDst) && m.dst.v4 == m.family_v6)))
    return "family contradicts the address family of src/dst";
  return {};
}

namespace {

bool parse_filter(Cursor& c, Command& cmd, std::string& err) {
  FilterSpec& s = cmd.filter;
  Match& m = s.match;
  bool have_class = false, any_match = false;
  while (!c.done()) {
    const int mw = parse_match_word(c.t, c.i, m, err);
    if (mw == 0) return false;
    if (mw == 1) {
      any_match = true;
      continue;
    }
    const std::string_view k = c.next();
    std::string_view v;
    uint64_t x;
    bool ok;
    if (k == "pref" || k == "prio" || k == "handle") {
      ok = once(s.pref, k, err) && value_of(c, k, v, err);
      if (ok && !parse_uint(v, 0xffffffffu, x, err)) ok = (err = "pref: " + err, false);
      if (ok) s.pref = static_cast<uint32_t>(x);
    } else if (k == "class" || k == "flowid" || k == "classid") {
      ok = value_of(c, k, v, err);
      if (ok && !valid_name(v)) ok = (err = "bad class name " + q(v), false);
      if (ok) {
        s.class_name = std::string(v);
        have_class = true;
        if (!c.done()) return err = "unexpected " + q(c.t[c.i]) + " after class " + q(v), false;
      }
    } else {
      err = "unknown word " + q(k) + " in filter " + std::string(to_string(cmd.verb)) +
            " (expected " + kFilterWords + ")";
      return false;
    }
    if (!ok) return false;
  }
  if (cmd.verb == Verb::del) {
    if (!s.pref) return err = "filter del needs pref N", false;
    if (any_match || have_class) return err = "filter del takes only pref N", false;
    return true;
  }
  if (!have_class) return err = "filter " + std::string(to_string(cmd.verb)) + ": missing 'class NAME'", false;
  if ((cmd.verb == Verb::change || cmd.verb == Verb::replace) && !s.pref)
    return err = "filter " + std::string(to_string(cmd.verb)) + " needs pref N", false;
  if (auto e = check_match(m); !e.empty()) return err = e, false;
  return true;
}

}  // namespace

ParseResult parse_command(std::string_view line) {
  Cursor c;
  c.t = tokenize(line);
  if (!c.done() && (c.t[0] == "qos" || c.t[0] == "tc")) ++c.i;
  if (c.done()) return fail("empty command");
  ParseResult r;
  Command& cmd = r.cmd;
  const std::string_view obj = c.next();
  if (obj == "qdisc") cmd.object = Object::qdisc;
  else if (obj == "class") cmd.object = Object::klass;
  else if (obj == "filter") cmd.object = Object::filter;
  else return fail("unknown object " + q(obj) + " (expected qdisc, class or filter)");
  if (c.done()) return fail(std::string(obj) + ": missing verb (add, change, replace or del)");
  const std::string_view verb = c.next();
  if (verb == "add") cmd.verb = Verb::add;
  else if (verb == "change") cmd.verb = Verb::change;
  else if (verb == "replace") cmd.verb = Verb::replace;
  else if (verb == "del" || verb == "delete") cmd.verb = Verb::del;
  else return fail("unknown verb " + q(verb) + " (expected add, change, replace or del)");
  if (!c.done() && c.t[c.i] == "dev") ++c.i;
  if (c.done()) return fail(std::string(obj) + " " + std::string(verb) + ": missing device name");
  const std::string_view dev = c.next();
  if (!valid_name(dev)) return fail("bad device name " + q(dev));
  cmd.dev = std::string(dev);
  std::string err;
  bool ok = false;
  switch (cmd.object) {
    case Object::qdisc: ok = parse_qdisc(c, cmd, err); break;
    case Object::klass: ok = parse_class(c, cmd, err); break;
    case Object::filter: ok = parse_filter(c, cmd, err); break;
  }
  if (!ok) return fail(std::move(err));
  r.ok = true;
  return r;
}

ScriptResult parse_script(std::string_view text) {
  ScriptResult out;
  size_t line_no = 0, b = 0;
  while (b <= text.size()) {
    size_t e = text.find('\n', b);
    if (e == std::string_view::npos) e = text.size();
    ++line_no;
    const std::string_view line = text.substr(b, e - b);
    b = e + 1;
    if (tokenize(line).empty()) continue;
    ParseResult r = parse_command(line);
    if (!r.ok) {
      out.error = "line " + std::to_string(line_no) + ": " + r.error;
      out.cmds.clear();
      out.lines.clear();
      return out;
    }
    out.cmds.push_back(std::move(r.cmd));
    out.lines.push_back(line_no);
  }
  out.ok = true;
  return out;
}

}  // namespace lockstep::sched
