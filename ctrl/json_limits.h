// Bounded JSON parsing for untrusted input (ctrl socket, native checkpointer protocol):
// a nesting-depth check that runs before the parser, then nlohmann's non-throwing parse.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace lockstep::ctrl {

using Json = nlohmann::json;

// True when no array/object nests deeper than max_depth (strings are skipped, escapes
// honoured). Linear, no allocation.
bool json_depth_ok(std::string_view text, size_t max_depth);

// Parses text into out. On failure returns false and fills error ("JSON nested deeper
// than N", "malformed JSON at byte K").
bool parse_json_bounded(std::string_view text, size_t max_depth, Json& out, std::string& error);

}  // namespace lockstep::ctrl
