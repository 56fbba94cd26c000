#include "run-overrides.h"

#include "json-input.h"
#include "result-files.h"

#include <cstdint>
#include <cstdio>

namespace ns3
{

namespace
{

bool
StartsWith(const std::string& text, const std::string& prefix)
{
    return text.compare(0, prefix.size(), prefix) == 0;
}

/// label with every character outside [A-Za-z0-9._=-] replaced by '_' (a folder name).
std::string
Sanitised(const std::string& label)
{
    std::string out;
    for (char ch : label)
    {
        const bool keep = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                          (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '=' ||
                          ch == '-';
        out += keep ? ch : '_';
    }
    return out;
}

/// FNV-1a, 64 bits, as 16 hex digits.
std::string
Hash(const std::string& text)
{
    std::uint64_t h = 1469598103934665603ULL;
    for (unsigned char ch : text)
    {
        h = (h ^ ch) * 1099511628211ULL;
    }
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
    return hex;
}

} // namespace

const std::vector<std::pair<std::string, std::string>>&
RunShortcuts()
{
    static const std::vector<std::pair<std::string, std::string>> shortcuts = {
        {"devices", "devices.count"},
        {"bandwidthMHz", "cell.bandwidth_mhz"},
        {"RngRun", "run"},
    };
    return shortcuts;
}

std::vector<RunOverride>
TakeRunOverrides(std::vector<std::string>& args)
{
    std::vector<RunOverride> overrides;
    std::vector<std::string> rest;
    for (std::size_t i = 0; i < args.size(); ++i)
    {
        const std::string& a = args[i];
        const auto eq = a.find('=');
        const std::string name = StartsWith(a, "--") ? a.substr(2, eq - 2) : "";
        bool shortcut = false;
        for (const auto& [option, field] : RunShortcuts())
        {
            if (i > 0 && name == option && eq != std::string::npos)
            {
                overrides.push_back({a, field + a.substr(eq), option + a.substr(eq)});
                shortcut = true;
            }
        }
        if (shortcut)
        {
            continue;
        }
        if (i > 0 && a == "--set" && i + 1 < args.size())
        {
            overrides.push_back({"--set " + args[i + 1], args[i + 1], args[i + 1]});
            ++i;
        }
        else if (i > 0 && StartsWith(a, "--set="))
        {
            overrides.push_back({a, a.substr(6), a.substr(6)});
        }
        else if (i > 0 && eq != std::string::npos && name.find('.') != std::string::npos)
        {
            overrides.push_back({a, a.substr(2), a.substr(2)}); // --dotted.key=value
        }
        else
        {
            rest.push_back(a);
        }
    }
    args = rest;
    return overrides;
}

std::vector<std::string>
OverrideSets(const std::vector<RunOverride>& overrides)
{
    std::vector<std::string> sets;
    for (const RunOverride& o : overrides)
    {
        sets.push_back(o.set);
    }
    return sets;
}

std::string
DefaultRunDirectory(const std::string& configPath, const std::vector<RunOverride>& overrides)
{
    const std::string plain = DefaultResultDirectory(configPath);
    std::string suffix;
    for (const RunOverride& o : overrides)
    {
        suffix += "+" + Sanitised(o.label);
    }
    const std::size_t name = plain.size() - std::string("results/").size();
    if (name + suffix.size() > 150)
    {
        suffix = suffix.substr(0, 150 > name + 17 ? 150 - name - 17 : 0) + "+" + Hash(suffix);
    }
    return plain + suffix;
}

std::string
NameOverridesIn(const std::string& message, const std::vector<RunOverride>& overrides)
{
    std::string named = message;
    for (const RunOverride& o : overrides)
    {
        const std::string field = o.set.substr(0, o.set.find('='));
        if (message.find("field \"" + field + "\"") != std::string::npos)
        {
            named += " (set by " + wdmoe::llm::CutForMessage(o.option, 100) + ")";
        }
    }
    return named;
}

} // namespace ns3
