#include "ctrl/libvirt_uri.h"

#include <vector>

namespace lockstep::ctrl {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) return false;
    int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return true;
}

bool unreserved(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '.' || c == '_' || c == '~';
}

// libvirt's remote transports (https://libvirt.org/uri.html).
bool known_transport(std::string_view t) {
  for (std::string_view k : {"unix", "ssh", "libssh", "libssh2", "tcp", "tls", "ext"})
    if (t == k) return true;
  return false;
}

}  // namespace

bool parse_libvirt_endpoint(std::string_view text, LibvirtTarget& out, std::string& error) {
  out = LibvirtTarget{};
  auto fail = [&](const std::string& why) {
    error = "bad libvirt endpoint '" + std::string(text) + "': " + why +
            " (expected libvirt:qemu:///system?domain=NAME)";
    return false;
  };
  if (!text.starts_with(kLibvirtPrefix)) return fail("it does not start with libvirt:");
  std::string_view uri = text.substr(kLibvirtPrefix.size());
  if (uri.empty()) return fail("no connection URI after libvirt:");
  for (char c : uri) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return fail("a space or control character in the URI");
  }
  if (uri.find('#') != std::string_view::npos) return fail("a fragment (#...) in the URI");
  size_t sep = uri.find("://");
  if (sep == std::string_view::npos || sep == 0) {
    return fail("the URI needs a scheme and ://, as in qemu:///system");
  }
  std::string_view scheme = uri.substr(0, sep);
  bool qemu = scheme == "qemu" ||
              (scheme.starts_with("qemu+") && known_transport(scheme.substr(5)));
  if (!qemu) {
    return fail("scheme '" + std::string(scheme) +
                "': the QEMU monitor pass-through needs libvirt's qemu driver (qemu:// or "
                "qemu+TRANSPORT://, TRANSPORT one of unix, ssh, libssh, libssh2, tcp, tls, ext)");
  }
  std::string_view rest = uri.substr(sep + 3);
  size_t q = rest.find('?');
  std::string_view hier = rest.substr(0, q);
  size_t slash = hier.find('/');
  if (slash == std::string_view::npos || slash + 1 == hier.size()) {
    return fail("no path in the URI (qemu:///system or qemu:///session)");
  }
  if (q == std::string_view::npos) return fail("no ?domain=NAME");
  std::string_view query = rest.substr(q + 1);
  std::vector<std::string_view> kept;
  bool have_domain = false;
  while (true) {
    size_t amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    if (part.empty()) return fail("an empty parameter in the URI's query");
    size_t eq = part.find('=');
    std::string_view key = part.substr(0, eq);
    if (key.empty()) return fail("a parameter without a name in the URI's query");
    if (key == "domain") {
      if (have_domain) return fail("domain= given twice");
      std::string_view value = eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1);
      if (value.empty()) return fail("domain= is empty");
      if (!percent_decode(value, out.domain)) return fail("a bad %XX escape in domain=");
      for (char c : out.domain) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f || c == '/') {
          return fail("the domain name holds '/' or a control character");
        }
      }
      have_domain = true;
    } else {
      kept.push_back(part);
    }
    if (amp == std::string_view::npos) break;
    query = query.substr(amp + 1);
  }
  if (!have_domain) return fail("missing domain=NAME");
  out.uri = std::string(uri.substr(0, sep + 3)) + std::string(hier);
  for (size_t i = 0; i < kept.size(); ++i) {
    out.uri += i == 0 ? '?' : '&';
    out.uri += kept[i];
  }
  return true;
}

std::string libvirt_endpoint_text(const LibvirtTarget& t) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string s = std::string(kLibvirtPrefix) + t.uri;
  s += t.uri.find('?') == std::string::npos ? '?' : '&';
  s += "domain=";
  for (char c : t.domain) {
    if (unreserved(c)) {
      s += c;
    } else {
      auto u = static_cast<unsigned char>(c);
      s += '%';
      s += kHex[u >> 4];
      s += kHex[u & 15];
    }
  }
  return s;
}

}  // namespace lockstep::ctrl
