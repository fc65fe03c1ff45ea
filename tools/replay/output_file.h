// An output file that only appears under its final name when it is complete: bytes go
// to NAME.tmp, commit() flushes, closes and renames it over NAME, discard() (and the
// destructor, when commit() was not reached) deletes the temporary. A reader never
// finds a half-written file under the name it asked for.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

namespace lockstep::replay {

class OutputFile {
 public:
  OutputFile() = default;
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  // Creates NAME.tmp. False + error ("PATH: problem") when it cannot.
  bool open(const std::string& path, std::string& error);
  bool is_open() const { return f_ != nullptr; }
  const std::string& path() const { return path_; }

  void write(const void* data, size_t len);
  void write(const std::string& s) { write(s.data(), s.size()); }

  // Flush, close, rename NAME.tmp to NAME. False + error on any write failure seen
  // since open(); the temporary is then deleted.
  bool commit(std::string& error);
  void discard();

 private:
  std::string path_, tmp_;
  std::FILE* f_ = nullptr;
  std::vector<char> buf_;
  bool failed_ = false;
};

}  // namespace lockstep::replay
