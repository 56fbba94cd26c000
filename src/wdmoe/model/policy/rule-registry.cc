#include "rule-registry.h"

#include <stdexcept>

namespace ns3
{

RuleRegistry::RuleRegistry(std::string kind,
                           TypeId (*base)(),
                           std::map<std::string, std::string> builtIn)
    : m_kind(std::move(kind)),
      m_base(base),
      m_types(std::move(builtIn))
{
}

void
RuleRegistry::Register(const std::string& name, const std::string& typeName)
{
    if (name.empty() || typeName.empty())
    {
        throw std::invalid_argument("cannot register the " + m_kind + " '" + name + "' as '" +
                                    typeName + "': empty name or type");
    }
    const auto [at, added] = m_types.emplace(name, typeName);
    if (!added && at->second != typeName)
    {
        throw std::invalid_argument("the " + m_kind + " name '" + name + "' already stands for " +
                                    at->second + " (not " + typeName + ")");
    }
}

TypeId
RuleRegistry::Lookup(const std::string& nameOrType) const
{
    const auto at = m_types.find(nameOrType);
    if (at != m_types.end())
    {
        return Checked(at->second, nameOrType);
    }
    TypeId tid;
    if (TypeId::LookupByNameFailSafe(nameOrType, &tid) && tid.IsChildOf(m_base()))
    {
        return tid;
    }
    std::string known;
    for (const std::string& name : Names())
    {
        known += (known.empty() ? "" : ", ") + name;
    }
    throw std::invalid_argument("unknown " + m_kind + " '" + nameOrType + "' (known: " + known +
                                "; or the TypeId name of a subclass of " + m_base().GetName() +
                                ")");
}

TypeId
RuleRegistry::Checked(const std::string& typeName, const std::string& asked) const
{
    TypeId tid;
    if (!TypeId::LookupByNameFailSafe(typeName, &tid))
    {
        throw std::invalid_argument("the " + m_kind + " '" + asked + "' stands for " + typeName +
                                    ", which is no registered TypeId");
    }
    if (!tid.IsChildOf(m_base()))
    {
        throw std::invalid_argument("the " + m_kind + " '" + asked + "' stands for " + typeName +
                                    ", which is not a " + m_base().GetName());
    }
    return tid;
}

std::vector<std::string>
RuleRegistry::Names() const
{
    std::vector<std::string> names;
    for (const auto& entry : m_types)
    {
        names.push_back(entry.first);
    }
    return names;
}

std::string
RuleRegistry::NameOf(TypeId type) const
{
    for (const auto& [name, typeName] : m_types)
    {
        if (typeName == type.GetName())
        {
            return name;
        }
    }
    return type.GetName();
}

} // namespace ns3
