#include "tools/replay/pcap_io.h"

#include <pcap/pcap.h>

#include <cstring>
#include <filesystem>
#include <memory>

namespace lockstep::replay {

namespace {

struct PcapCloser {
  void operator()(pcap_t* p) const { pcap_close(p); }
};

// libpcap often starts its message with the file name; the caller adds it once.
std::string without_path_prefix(const std::string& path, std::string msg) {
  const std::string prefix = path + ": ";
  if (msg.compare(0, prefix.size(), prefix) == 0) msg.erase(0, prefix.size());
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == '\r')) msg.pop_back();
  for (char& c : msg) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return msg;
}

std::string link_name(int dlt) {
  const char* name = pcap_datalink_val_to_name(dlt);
  return (name != nullptr ? std::string(name) : std::string("unknown")) + " (" +
         std::to_string(dlt) + ")";
}

// Little-endian on every host, so outputs are byte for byte the same everywhere.
void put_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void put_u16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}

}  // namespace

bool read_capture(const std::string& path, Capture& out, std::string& error) {
  out.path = path;
  out.frames.clear();
  out.bytes.clear();
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  std::unique_ptr<pcap_t, PcapCloser> p(
      pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, errbuf));
  if (!p) {
    error = path + ": " + without_path_prefix(path, errbuf);
    return false;
  }
  const int dlt = pcap_datalink(p.get());
  if (dlt != DLT_EN10MB) {
    error = path + ": link type " + link_name(dlt) + " is not Ethernet (EN10MB, 1)";
    return false;
  }
  // The arena never needs more than the file's size (records carry headers).
  std::error_code ec;
  const auto file_bytes = std::filesystem::file_size(path, ec);
  if (!ec) out.bytes.reserve(static_cast<size_t>(file_bytes));
  for (;;) {
    pcap_pkthdr* h = nullptr;
    const u_char* data = nullptr;
    const int rc = pcap_next_ex(p.get(), &h, &data);
    if (rc == PCAP_ERROR_BREAK) break;  // -2: end of file
    if (rc != 1) {
      error = path + ": frame " + std::to_string(out.frames.size()) + ": " +
              without_path_prefix(path, pcap_geterr(p.get()));
      return false;
    }
    // A record whose captured length exceeds what libpcap handed over cannot happen
    // (libpcap checks), but a caplen above the wire length is a corrupt record.
    if (h->caplen > h->len) {
      error = path + ": frame " + std::to_string(out.frames.size()) +
              ": captured length " + std::to_string(h->caplen) +
              " exceeds wire length " + std::to_string(h->len);
      return false;
    }
    Frame f;
    f.ts_ns = static_cast<uint64_t>(h->ts.tv_sec) * 1000000000ull +
              static_cast<uint64_t>(h->ts.tv_usec);  // nanoseconds at NANO precision
    f.offset = out.bytes.size();
    f.caplen = h->caplen;
    f.wirelen = h->len;
    out.bytes.insert(out.bytes.end(), data, data + h->caplen);
    out.frames.push_back(f);
  }
  return true;
}

bool PcapWriter::open(const std::string& path, std::string& error) {
  frames_ = 0;
  if (!out_.open(path, error)) return false;
  uint8_t hdr[24];
  put_u32(hdr, kMagicNs);
  put_u16(hdr + 4, 2);
  put_u16(hdr + 6, 4);
  put_u32(hdr + 8, 0);   // thiszone
  put_u32(hdr + 12, 0);  // sigfigs
  put_u32(hdr + 16, kSnaplen);
  put_u32(hdr + 20, kLinkEthernet);
  out_.write(hdr, sizeof hdr);
  return true;
}

void PcapWriter::write(uint64_t ts_ns, const uint8_t* data, uint32_t caplen, uint32_t wirelen) {
  uint8_t rec[16];
  put_u32(rec, static_cast<uint32_t>(ts_ns / 1000000000ull));
  put_u32(rec + 4, static_cast<uint32_t>(ts_ns % 1000000000ull));
  put_u32(rec + 8, caplen);
  put_u32(rec + 12, wirelen < caplen ? caplen : wirelen);
  out_.write(rec, sizeof rec);
  out_.write(data, caplen);
  ++frames_;
}

}  // namespace lockstep::replay
