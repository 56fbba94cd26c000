// The config names of one kind of policy rule (expert selection, bandwidth allocation) and the
// ns-3 TypeIds they stand for. Built-in rules are known from the start; a program adds its own
// with Register (doc/wdmoe.rst "Adding a policy rule").
#ifndef WDMOE_RULE_REGISTRY_H
#define WDMOE_RULE_REGISTRY_H

#include "ns3/object-factory.h"
#include "ns3/ptr.h"
#include "ns3/type-id.h"

#include <map>
#include <string>
#include <vector>

namespace ns3
{

class RuleRegistry
{
  public:
    /// `kind` names the rules in messages ("expert selection rule"); every registered type must
    /// be a subclass of base() (a function, so that the registry can be built before the
    /// TypeIds are); `builtIn` maps names to TypeId names.
    RuleRegistry(std::string kind, TypeId (*base)(), std::map<std::string, std::string> builtIn);

    /// Makes `name` stand for the TypeId named `typeName` (checked when it is looked up, so a
    /// rule may register before its TypeId does). Registering a name again for the same type
    /// does nothing; for another type, or an empty name or type, throws std::invalid_argument.
    void Register(const std::string& name, const std::string& typeName);

    /// The TypeId of a registered name, or of a TypeId name ("ns3::WlrSelectionRule") of a
    /// subclass of the base. Throws std::invalid_argument naming the known names otherwise.
    TypeId Lookup(const std::string& nameOrType) const;

    /// A new rule of the type Lookup(nameOrType) finds, with its attributes' defaults.
    template <class Rule>
    Ptr<Rule> Create(const std::string& nameOrType) const
    {
        ObjectFactory factory;
        factory.SetTypeId(Lookup(nameOrType));
        return factory.Create<Rule>();
    }

    /// The registered names, sorted.
    std::vector<std::string> Names() const;

    /// The name a type is registered under (the first, sorted), else its TypeId name: what the
    /// results call a rule object.
    std::string NameOf(TypeId type) const;

  private:
    TypeId Checked(const std::string& typeName, const std::string& asked) const;

    std::string m_kind;
    TypeId (*m_base)();
    std::map<std::string, std::string> m_types;
};

} // namespace ns3

#endif
