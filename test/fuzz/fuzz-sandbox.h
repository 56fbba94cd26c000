// What every fuzz harness shares: a per-process folder that mirrors the repository's layout
// (configs/ with its profiles, models/), into which each input is written as a file, because
// the readers under test take paths. Harnesses define LLVMFuzzerTestOneInput; libFuzzer (the
// -DWDMOE_FUZZ=ON build) or fuzz-replay.cc (every other build) calls it.
#ifndef WDMOE_FUZZ_SANDBOX_H
#define WDMOE_FUZZ_SANDBOX_H

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace wdmoe
{
namespace fuzz
{

/// The sandbox folder (created on first use, removed at exit): <dir>/configs/ holds a link to
/// every entry of the repository's configs/ (profiles/, paper/, default.json...), <dir>/models
/// links to its models/. Inputs written into <dir>/configs/ resolve "../models/kjv-moe" and
/// "profiles" as the shipped configs do.
const std::string& SandboxDir();

/// Writes the input to <SandboxDir()>/<relativePath> (replacing it) and returns that path.
std::string WriteInput(const std::string& relativePath, const std::uint8_t* data, std::size_t size);

/// Reports an exception no reader may throw (not the documented error type) and aborts, so that
/// the fuzzer records the input as a finding.
[[noreturn]] void Unexpected(const char* harness, const char* what);

} // namespace fuzz
} // namespace wdmoe

#endif
