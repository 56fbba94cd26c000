// The message a failing call throws, for tests that compare whole messages.
#ifndef WDMOE_TEST_ERROR_MESSAGE_H
#define WDMOE_TEST_ERROR_MESSAGE_H

#include <exception>
#include <functional>
#include <string>

namespace wdmoe
{
namespace test
{

/// What f throws (any std::exception), or "" when it throws nothing.
inline std::string
ErrorOf(const std::function<void()>& f)
{
    try
    {
        f();
    }
    catch (const std::exception& e)
    {
        return e.what();
    }
    return "";
}

} // namespace test
} // namespace wdmoe

#endif
