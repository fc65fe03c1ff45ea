#include "common/cli.h"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <utility>

#ifndef LOCKSTEP_VERSION
#error "LOCKSTEP_VERSION must be set by the build (meson's project version)"
#endif

namespace lockstep::cli {

const char* version() { return LOCKSTEP_VERSION; }

namespace {

// "usage: ..." lines first, then the description: the layout of the man pages.
class Layout : public CLI::Formatter {
 public:
  explicit Layout(std::vector<std::string> usage) : usage_(std::move(usage)) {}

  std::string make_description(const CLI::App*) const override { return {}; }

  std::string make_usage(const CLI::App* app, std::string name) const override {
    std::string out;
    if (usage_.empty()) {
      out = CLI::Formatter::make_usage(app, std::move(name));
    }
    for (size_t i = 0; i < usage_.size(); ++i) {
      out += (i == 0 ? "usage: " : "       ") + app->get_name() + " " + usage_[i] + "\n";
    }
    if (!app->get_description().empty()) out += "\n" + app->get_description() + "\n";
    return out;
  }

  // The value's name only ("--pairs N", not CLI11's "--pairs UINT:INT in [1000 - ...]"):
  // the description says what is accepted.
  std::string make_option_opts(const CLI::Option* opt) const override {
    if (!opt->get_option_text().empty()) return " " + opt->get_option_text();
    if (opt->get_positional() || opt->get_type_size() == 0) return {};
    std::string name = opt->get_type_name();
    name = name.substr(0, name.find(':'));
    if (opt->get_expected_max() == CLI::detail::expected_max_vector_size) name += " ...";
    return name.empty() ? std::string{} : " " + name;
  }

 private:
  std::vector<std::string> usage_;
};

}  // namespace

void setup(CLI::App& app, std::vector<std::string> usage, std::string_view footer) {
  app.set_help_flag("-h,--help", "print this help and exit");
  app.set_version_flag("-V,--version", app.get_name() + " " + version(),
                       "print the version and exit");
  auto fmt = std::make_shared<Layout>(std::move(usage));
  fmt->column_width(kOptionColumn);
  fmt->label("REQUIRED", "(required)");
  app.formatter(fmt);
  if (!footer.empty()) app.footer(std::string(footer));
}

namespace {

int finish(const CLI::App& app, const CLI::ParseError& e, int usage_status) {
  if (e.get_name() == "CallForHelp" || e.get_name() == "CallForAllHelp") {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  }
  if (e.get_name() == "CallForVersion") {
    std::printf("%s\n", e.what());
    return 0;
  }
  std::string message = e.what();
  // CLI11 lists every unexpected word after a colon, the first one last: name it.
  if (dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr &&
      message.find(": ") != std::string::npos) {
    std::string w = message.substr(message.rfind(' ') + 1);
    message = (w.size() > 1 && w[0] == '-' ? "unknown option '" : "unexpected argument '") + w + "'";
  }
  // "--primary: 1 required FILE missing": an option given without its value.
  if (dynamic_cast<const CLI::ArgumentMismatch*>(&e) != nullptr && message.ends_with(" missing") &&
      message.find(": ") != std::string::npos) {
    message = message.substr(0, message.find(": ")) + " needs a value";
  }
  return usage_error(app, message, usage_status);
}

}  // namespace

int parse(CLI::App& app, int argc, const char* const* argv, int usage_status) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return finish(app, e, usage_status);
  }
  return -1;
}

int parse(CLI::App& app, std::vector<std::string> words, int usage_status) {
  // CLI11 takes the words last to first.
  std::reverse(words.begin(), words.end());
  try {
    app.parse(words);
  } catch (const CLI::ParseError& e) {
    return finish(app, e, usage_status);
  }
  return -1;
}

int usage_error(const CLI::App& app, std::string_view message, int usage_status) {
  std::string name = app.get_name();
  std::string m(message);
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  for (char& c : m) {
    if (c == '\n') c = ' ';
  }
  std::fprintf(stderr, "%s: %s (see %s --help)\n", name.c_str(), m.c_str(), name.c_str());
  return usage_status;
}

}  // namespace lockstep::cli
