#include "load-error.h"

namespace wdmoe
{
namespace llm
{

LoadError::LoadError(const std::string& file, const std::string& problem)
    : std::runtime_error(file + ": " + problem),
      m_file(file)
{
}

} // namespace llm
} // namespace wdmoe
