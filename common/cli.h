// The command-line conventions every lockstep program shares, on CLI11: -h/--help and
// -V/--version ("PROGRAM VERSION", the version being meson's project version), help that
// fits 100 columns, and one form for errors: one line "PROGRAM: what is wrong (see
// PROGRAM --help)" on stderr, then the program's usage exit status.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace lockstep::cli {

// The widest line a program's --help may print.
inline constexpr size_t kHelpColumns = 100;
// Where option descriptions start in --help.
inline constexpr size_t kOptionColumn = 28;

// lockstep's version (meson's project version).
const char* version();

// Sets the help and version flags and the help layout: "usage: PROGRAM LINE" for each of
// `usage` (the arguments after the program's name), the app's description, the options,
// then `footer`.
void setup(CLI::App& app, std::vector<std::string> usage, std::string_view footer = {});

// Parses `argv` (argv[0] is skipped). -1: go on; otherwise the process's exit status:
// 0 after --help or --version (printed on stdout), `usage_status` after a usage error
// (the message on stderr).
int parse(CLI::App& app, int argc, const char* const* argv, int usage_status);

// The same for a word list (no program name in front).
int parse(CLI::App& app, std::vector<std::string> words, int usage_status);

// Prints a usage error the common way and returns `usage_status`.
int usage_error(const CLI::App& app, std::string_view message, int usage_status);

}  // namespace lockstep::cli
