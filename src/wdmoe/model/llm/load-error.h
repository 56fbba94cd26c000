// The one error type for input the llm library cannot use: a weights, config or JSON file.
#ifndef WDMOE_LLM_LOAD_ERROR_H
#define WDMOE_LLM_LOAD_ERROR_H

#include <stdexcept>
#include <string>

namespace wdmoe
{
namespace llm
{

/// A weights or config file that cannot be used. what() is "<file>: <problem>".
class LoadError : public std::runtime_error
{
  public:
    LoadError(const std::string& file, const std::string& problem);

    const std::string& File() const { return m_file; }

  private:
    std::string m_file;
};

} // namespace llm
} // namespace wdmoe

#endif
