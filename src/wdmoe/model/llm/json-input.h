// JSON from outside the program (config files, safetensors headers and indexes, command-line
// values), parsed the same way everywhere: every problem is a LoadError naming its source, and
// what is accepted is safe to dump, copy and quote.
#ifndef WDMOE_LLM_JSON_INPUT_H
#define WDMOE_LLM_JSON_INPUT_H

#include "load-error.h"

#include <cstddef>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>

namespace wdmoe
{
namespace llm
{

/// The deepest nesting of objects and arrays any JSON input may have. nlohmann parses without
/// recursion, but dump(), copies and comparisons recurse once per level: 65,000 levels overflow
/// the stack. No config of ours nests deeper than 5.
constexpr int kMaxJsonDepth = 64;

/// The largest JSON file read whole (the safetensors reference's cap on a header).
constexpr std::uint64_t kMaxJsonFileBytes = 100000000;

/// Parses text that came from source (a file name, or "--set key" for a command-line value;
/// every message starts with it). what, when not empty, names the part in messages ("header").
/// Refused, as LoadError: invalid JSON; a number too large for a double ("1e400"); nesting
/// deeper than kMaxJsonDepth; a key given twice in one object (nlohmann would silently keep the
/// last). Nothing else escapes: any nlohmann exception becomes a LoadError.
nlohmann::json ParseJsonInput(const std::string& source,
                              const char* begin,
                              const char* end,
                              const std::string& what = "");
/// The same, keeping objects in file order.
nlohmann::ordered_json ParseOrderedJsonInput(const std::string& source,
                                             const char* begin,
                                             const char* end,
                                             const std::string& what = "");

/// Reads a whole JSON file: a regular file of at most kMaxJsonFileBytes (a folder, a FIFO or
/// /dev/zero would otherwise read forever or fail vaguely), parsed by ParseJsonInput.
nlohmann::json ReadJsonFile(const std::string& path);
nlohmann::ordered_json ReadOrderedJsonFile(const std::string& path);

/// A short, safe rendering of a JSON value for messages: scalars as JSON (cut to about 60
/// characters), containers by kind only ("an object", "an array").
std::string DescribeJson(const nlohmann::json& value);

/// A JSON value as its text, cut to at most maxChars characters ("..." marks a cut); invalid
/// UTF-8 is replaced, so this never throws for any value.
std::string ShortJson(const nlohmann::json& value, std::size_t maxChars = 80);
std::string ShortJson(const nlohmann::ordered_json& value, std::size_t maxChars = 80);

/// A string from outside cut to at most maxChars bytes for a message ("..." marks a cut; a
/// UTF-8 sequence is never split).
std::string CutForMessage(const std::string& text, std::size_t maxChars = 80);

/// The same, quoted.
std::string QuoteForMessage(const std::string& text, std::size_t maxChars = 80);

} // namespace llm
} // namespace wdmoe

#endif
