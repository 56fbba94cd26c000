// Result files that appear whole or not at all.
#ifndef WDMOE_RESULT_FILES_H
#define WDMOE_RESULT_FILES_H

#include "file-io.h"

#include <string>

namespace ns3
{

/// "results/<config file name without .json>", where a run writes unless told otherwise.
std::string DefaultResultDirectory(const std::string& configPath);

/// Creates a folder and its parents; throws std::runtime_error naming it on failure.
void CreateResultDirectory(const std::string& dir);

/// Result files are written whole or not at all (the llm library's one implementation).
using wdmoe::llm::WriteFileAtomically;

/// text as one CSV field (RFC 4180): as it is, or in double quotes with inner quotes doubled
/// when it holds a comma, a quote or a line break.
std::string CsvField(const std::string& text);

} // namespace ns3

#endif
