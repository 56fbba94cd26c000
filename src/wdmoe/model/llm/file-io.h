// Files that appear whole or not at all (the llm library's and the simulator's results alike).
#ifndef WDMOE_LLM_FILE_IO_H
#define WDMOE_LLM_FILE_IO_H

#include <string>

namespace wdmoe
{
namespace llm
{

/// Writes content to path + ".tmp", flushes it, then renames it over path, so a reader sees
/// the old file or the whole new one, never a part. Throws std::runtime_error naming the file.
void WriteFileAtomically(const std::string& path, const std::string& content);

} // namespace llm
} // namespace wdmoe

#endif
