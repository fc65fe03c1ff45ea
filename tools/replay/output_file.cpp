#include "tools/replay/output_file.h"

#include <cerrno>
#include <cstring>

namespace lockstep::replay {

namespace {
constexpr size_t kBufferBytes = 1 << 20;
}

OutputFile::~OutputFile() { discard(); }

bool OutputFile::open(const std::string& path, std::string& error) {
  discard();
  path_ = path;
  tmp_ = path + ".tmp";
  f_ = std::fopen(tmp_.c_str(), "wb");
  if (f_ == nullptr) {
    error = tmp_ + ": cannot create: " + std::strerror(errno);
    return false;
  }
  buf_.resize(kBufferBytes);
  std::setvbuf(f_, buf_.data(), _IOFBF, buf_.size());
  failed_ = false;
  return true;
}

void OutputFile::write(const void* data, size_t len) {
  if (f_ == nullptr || len == 0) return;
  if (std::fwrite(data, 1, len, f_) != len) failed_ = true;
}

bool OutputFile::commit(std::string& error) {
  if (f_ == nullptr) {
    error = path_ + ": not open";
    return false;
  }
  bool ok = !failed_ && std::fflush(f_) == 0;
  int saved = errno;
  if (std::fclose(f_) != 0 && ok) {
    ok = false;
    saved = errno;
  }
  f_ = nullptr;
  if (!ok) {
    error = tmp_ + ": write failed: " + std::strerror(saved);
    std::remove(tmp_.c_str());
    return false;
  }
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    error = path_ + ": cannot rename from " + tmp_ + ": " + std::strerror(errno);
    std::remove(tmp_.c_str());
    return false;
  }
  return true;
}

void OutputFile::discard() {
  if (f_ != nullptr) {
    std::fclose(f_);
    f_ = nullptr;
    std::remove(tmp_.c_str());
  }
}

}  // namespace lockstep::replay
