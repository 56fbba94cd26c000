// How much memory this process may still take, checked before a large allocation, so that a
// cache or a tensor too large for the machine is an error naming it and its size instead of a
// bare std::bad_alloc, an OOM kill or a machine swapping for minutes.
#ifndef WDMOE_LLM_MEMORY_BUDGET_H
#define WDMOE_LLM_MEMORY_BUDGET_H

#include <cstdint>
#include <string>

namespace wdmoe
{
namespace llm
{

/// Bytes this process can still allocate: the least of the kernel's MemAvailable
/// (/proc/meminfo), the cgroup's memory.max minus memory.current (cgroup v2, in containers) and
/// RLIMIT_AS minus the address space in use. UINT64_MAX when none of them is known.
std::uint64_t AvailableMemoryBytes();

/// "8.59 GB" (decimal units, 3 significant digits).
std::string FormatBytes(std::uint64_t bytes);

/// Throws std::runtime_error "<what> needs <size> (<bytes> bytes), more than the <available>
/// of memory available" when bytes exceeds AvailableMemoryBytes().
void RequireMemory(const std::string& what, std::uint64_t bytes);

} // namespace llm
} // namespace wdmoe

#endif
