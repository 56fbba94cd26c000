// Whole files: read in one piece, and written so that they appear whole or not at all (the llm
// library's and the simulator's files alike).
#ifndef WDMOE_LLM_FILE_IO_H
#define WDMOE_LLM_FILE_IO_H

#include <optional>
#include <string>

namespace wdmoe
{
namespace llm
{

/// The whole content of the file at path (bytes as they are), or nothing when it cannot be
/// opened. Callers say what the file was for in their own errors.
std::optional<std::string> ReadWholeFile(const std::string& path);

/// Writes content to path + ".tmp", flushes it, then renames it over path, so a reader sees
/// the old file or the whole new one, never a part. Throws std::runtime_error naming the file.
void WriteFileAtomically(const std::string& path, const std::string& content);

} // namespace llm
} // namespace wdmoe

#endif
