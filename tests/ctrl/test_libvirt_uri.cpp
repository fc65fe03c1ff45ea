// The qmp link's libvirt endpoint (ctrl/libvirt_uri.h): libvirt:URI?domain=NAME taken
// apart, the URI's other parameters kept for libvirt, and every malformed form refused
// with a message saying what is wrong.
#include <gtest/gtest.h>

#include <string>

#include "ctrl/libvirt_uri.h"
#include "ctrl/net.h"
#include "ctrl/qmp_libvirt.h"

using namespace lockstep::ctrl;

namespace {

LibvirtTarget parse_ok(const std::string& text) {
  LibvirtTarget t;
  std::string error;
  EXPECT_TRUE(parse_libvirt_endpoint(text, t, error)) << text << ": " << error;
  return t;
}

std::string parse_error(const std::string& text) {
  LibvirtTarget t;
  std::string error;
  EXPECT_FALSE(parse_libvirt_endpoint(text, t, error)) << text << " was accepted";
  return error;
}

}  // namespace

TEST(LibvirtUri, SystemAndSession) {
  auto t = parse_ok("libvirt:qemu:///system?domain=pvm");
  EXPECT_EQ(t.uri, "qemu:///system");
  EXPECT_EQ(t.domain, "pvm");
  t = parse_ok("libvirt:qemu:///session?domain=colo-primary_1.test");
  EXPECT_EQ(t.uri, "qemu:///session");
  EXPECT_EQ(t.domain, "colo-primary_1.test");
}

TEST(LibvirtUri, RemoteTransportsKeepTheirParameters) {
  auto t = parse_ok("libvirt:qemu+ssh://root@host-a:2222/system?keyfile=/etc/k&domain=pvm&no_verify=1");
  EXPECT_EQ(t.uri, "qemu+ssh://root@host-a:2222/system?keyfile=/etc/k&no_verify=1");
  EXPECT_EQ(t.domain, "pvm");
  t = parse_ok("libvirt:qemu+unix:///system?socket=/run/libvirt/libvirt-sock&domain=x");
  EXPECT_EQ(t.uri, "qemu+unix:///system?socket=/run/libvirt/libvirt-sock");
  t = parse_ok("libvirt:qemu+tls://host/system?domain=x");
  EXPECT_EQ(t.uri, "qemu+tls://host/system");
  t = parse_ok("libvirt:qemu:///embed?root=/var/tmp/lv&domain=x");
  EXPECT_EQ(t.uri, "qemu:///embed?root=/var/tmp/lv");
}

TEST(LibvirtUri, DomainIsPercentDecodedAndWrittenBack) {
  auto t = parse_ok("libvirt:qemu:///system?domain=my%20vm%3a1");
  EXPECT_EQ(t.domain, "my vm:1");
  EXPECT_EQ(libvirt_endpoint_text(t), "libvirt:qemu:///system?domain=my%20vm%3A1");
  for (const char* text : {"libvirt:qemu:///system?domain=pvm",
                           "libvirt:qemu+ssh://h/system?keyfile=/k&domain=a%2Bb"}) {
    auto once = parse_ok(text);
    auto twice = parse_ok(libvirt_endpoint_text(once));
    EXPECT_EQ(once.uri, twice.uri);
    EXPECT_EQ(once.domain, twice.domain);
  }
}

TEST(LibvirtUri, MalformedFormsSayWhatIsWrong) {
  struct Case {
    const char* text;
    const char* says;
  };
  const Case cases[] = {
      {"qemu:///system?domain=x", "does not start with libvirt:"},
      {"libvirt:", "no connection URI"},
      {"libvirt:qemu:///system", "no ?domain=NAME"},
      {"libvirt:qemu:///system?", "empty parameter"},
      {"libvirt:qemu:///system?keyfile=/k", "missing domain=NAME"},
      {"libvirt:qemu:///system?domain=", "domain= is empty"},
      {"libvirt:qemu:///system?domain", "domain= is empty"},
      {"libvirt:qemu:///system?domain=a&domain=b", "domain= given twice"},
      {"libvirt:qemu:///system?domain=a&&x=1", "empty parameter"},
      {"libvirt:qemu:///system?=1&domain=a", "without a name"},
      {"libvirt:qemu:///system?domain=a%2", "bad %XX escape"},
      {"libvirt:qemu:///system?domain=a%zz", "bad %XX escape"},
      {"libvirt:qemu:///system?domain=a%2Fb", "'/'"},
      {"libvirt:qemu:///system?domain=a%0Ab", "control character"},
      {"libvirt:qemu:///system?domain=a b", "space or control character"},
      {"libvirt:qemu:///system?domain=a#frag", "fragment"},
      {"libvirt:qemu:system?domain=a", "scheme and ://"},
      {"libvirt:///system?domain=a", "scheme and ://"},
      {"libvirt:xen:///system?domain=a", "qemu driver"},
      {"libvirt:test:///default?domain=a", "qemu driver"},
      {"libvirt:qemu+carrier://h/system?domain=a", "qemu driver"},
      {"libvirt:qemu://?domain=a", "no path"},
      {"libvirt:qemu://host?domain=a", "no path"},
      {"libvirt:qemu:///?domain=a", "no path"},
  };
  for (const auto& c : cases) {
    std::string e = parse_error(c.text);
    EXPECT_NE(e.find(c.says), std::string::npos) << c.text << " -> " << e;
    EXPECT_NE(e.find("expected libvirt:qemu:///system?domain=NAME"), std::string::npos) << e;
  }
}

TEST(LibvirtUri, QmpEndpointsTakeLibvirtOtherEndpointsDoNot) {
  Endpoint ep;
  std::string error;
  ASSERT_TRUE(parse_qmp_endpoint("libvirt:qemu:///system?domain=pvm", ep, error)) << error;
  EXPECT_EQ(ep.kind, Endpoint::Kind::libvirt);
  EXPECT_EQ(ep.uri, "qemu:///system");
  EXPECT_EQ(ep.domain, "pvm");
  EXPECT_EQ(ep.to_string(), "libvirt:qemu:///system?domain=pvm");
  ASSERT_TRUE(parse_qmp_endpoint("unix:/run/qemu/pvm.sock", ep, error)) << error;
  EXPECT_EQ(ep.kind, Endpoint::Kind::unix_path);
  EXPECT_EQ(ep.path, "/run/qemu/pvm.sock");
  EXPECT_FALSE(parse_qmp_endpoint("libvirt:qemu:///system", ep, error));
  EXPECT_NE(error.find("domain"), std::string::npos) << error;
  // Sockets-only callers (ctrl socket, heartbeats, chardevs) never see a libvirt kind.
  EXPECT_FALSE(parse_endpoint("libvirt:qemu:///system?domain=pvm", ep, error));
  ASSERT_TRUE(parse_qmp_endpoint("libvirt:qemu:///system?domain=pvm", ep, error));
  EXPECT_FALSE(listen_endpoint(ep, error).valid());
  EXPECT_NE(error.find("libvirt"), std::string::npos) << error;
}

TEST(LibvirtUri, OpenWithoutLibvirtSaysSo) {
  if (libvirt_qmp_available()) GTEST_SKIP() << "this build has libvirt";
  Endpoint ep;
  std::string error;
  ASSERT_TRUE(parse_qmp_endpoint("libvirt:qemu:///system?domain=pvm", ep, error));
  EXPECT_FALSE(connect_endpoint(ep, error).valid());
  EXPECT_NE(error.find("no libvirt"), std::string::npos) << error;
}
