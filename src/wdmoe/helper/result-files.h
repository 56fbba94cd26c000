// Result files that appear whole or not at all.
#ifndef WDMOE_RESULT_FILES_H
#define WDMOE_RESULT_FILES_H

#include <string>

namespace ns3
{

/// "results/<config file name without .json>", where a run writes unless told otherwise.
std::string DefaultResultDirectory(const std::string& configPath);

/// Creates a folder and its parents; throws std::runtime_error naming it on failure.
void CreateResultDirectory(const std::string& dir);

/// Writes content to path + ".tmp", flushes it, then renames it over path, so a reader sees
/// the old file or the whole new one, never a part. Throws std::runtime_error naming the file.
void WriteFileAtomically(const std::string& path, const std::string& content);

/// text as one CSV field (RFC 4180): as it is, or in double quotes with inner quotes doubled
/// when it holds a comma, a quote or a line break.
std::string CsvField(const std::string& text);

} // namespace ns3

#endif
