#include "cell-mobility.h"

#include "json-config.h"

#include "ns3/box.h"
#include "ns3/double.h"
#include "ns3/object-factory.h"
#include "ns3/pointer.h"
#include "ns3/position-allocator.h"
#include "ns3/rectangle.h"

#include <algorithm>
#include <map>

namespace ns3
{

namespace
{

/// How the cell bounds each model it supports.
enum class Bounding
{
    NONE,         ///< stays where it is put
    RECTANGLE,    ///< "Bounds", a Rectangle
    BOX,          ///< "Bounds", a Box (Gauss-Markov also moves in z)
    WAYPOINTS,    ///< "PositionAllocator" for its waypoints
    STEADY_STATE, ///< MinX/MaxX/MinY/MaxY and Z attributes; draws its own start
};

const std::map<std::string, Bounding>&
Supported()
{
    static const std::map<std::string, Bounding> models = {
        {"ns3::ConstantPositionMobilityModel", Bounding::NONE},
        {"ns3::RandomWalk2dMobilityModel", Bounding::RECTANGLE},
        {"ns3::RandomDirection2dMobilityModel", Bounding::RECTANGLE},
        {"ns3::GaussMarkovMobilityModel", Bounding::BOX},
        {"ns3::RandomWaypointMobilityModel", Bounding::WAYPOINTS},
        {"ns3::SteadyStateRandomWaypointMobilityModel", Bounding::STEADY_STATE},
    };
    return models;
}

/// Why a mobility model the cell does not support cannot be used.
std::string
WhyNot(const std::string& type)
{
    static const std::map<std::string, std::string> reasons = {
        {"ns3::ConstantVelocityMobilityModel",
         "keeps a velocity that no config field sets (at its default of 0 it is \"static\")"},
        {"ns3::ConstantAccelerationMobilityModel",
         "keeps a velocity and acceleration that no config field sets (at their defaults of 0 it "
         "is \"static\")"},
        {"ns3::WaypointMobilityModel", "moves only along waypoints that a program adds"},
        {"ns3::HierarchicalMobilityModel",
         "moves relative to parent and child models that a "
         "program sets"},
    };
    const auto it = reasons.find(type);
    return it != reasons.end() ? it->second : "is not one the cell can bound by its radius";
}

Bounding
BoundingOf(Ptr<MobilityModel> m)
{
    const auto it = Supported().find(m->GetInstanceTypeId().GetName());
    NS_ABORT_MSG_IF(it == Supported().end(),
                    "PlaceInCell: " << m->GetInstanceTypeId().GetName()
                                    << " was not checked with CheckCellMobility");
    return it->second;
}

} // namespace

std::vector<std::string>
CellMobilityModels()
{
    std::vector<std::string> names{"static"};
    for (const auto& [name, bounding] : Supported())
    {
        names.push_back(name);
    }
    return names;
}

void
CheckCellMobility(const JsonConfigReader& root,
                  const std::string& field,
                  const std::string& mobility)
{
    if (mobility == "static" || Supported().count(mobility) != 0)
    {
        return;
    }
    std::string list;
    for (const std::string& name : CellMobilityModels())
    {
        list += (list.empty() ? "\"" : ", \"") + name + "\"";
    }
    TypeId type;
    const bool isMobility =
        TypeId::LookupByNameFailSafe(mobility, &type) && type.IsChildOf(MobilityModel::GetTypeId());
    root.Fail(field,
              "is " + QuoteForMessage(mobility) + ", which " +
                  (isMobility ? WhyNot(mobility) : "is no ns-3 mobility model TypeId name") +
                  "; the cell's devices can use " + list);
}

Ptr<MobilityModel>
CreateCellMobility(const std::string& mobility)
{
    ObjectFactory factory;
    factory.SetTypeId(mobility == "static" ? "ns3::ConstantPositionMobilityModel" : mobility);
    return factory.Create<MobilityModel>();
}

void
PlaceInCell(Ptr<MobilityModel> m, double radiusM, const Vector& position, int64_t& stream)
{
    const double r = radiusM;
    switch (BoundingOf(m))
    {
    case Bounding::NONE:
        m->SetPosition(position);
        return; // no random streams
    case Bounding::RECTANGLE:
        m->SetAttribute("Bounds", RectangleValue(Rectangle(-r, r, -r, r)));
        break;
    case Bounding::BOX:
        // Devices stay at their height (its default pitch is 0): the 3GPP models need z >= 1.5.
        m->SetAttribute("Bounds", BoxValue(Box(-r, r, -r, r, position.z, position.z)));
        break;
    case Bounding::WAYPOINTS:
    {
        Ptr<UniformDiscPositionAllocator> waypoints = CreateObject<UniformDiscPositionAllocator>();
        waypoints->SetRho(r);
        waypoints->SetZ(position.z);
        m->SetAttribute("PositionAllocator", PointerValue(waypoints));
        break;
    }
    case Bounding::STEADY_STATE:
        m->SetAttribute("MinX", DoubleValue(-r));
        m->SetAttribute("MaxX", DoubleValue(r));
        m->SetAttribute("MinY", DoubleValue(-r));
        m->SetAttribute("MaxY", DoubleValue(r));
        m->SetAttribute("Z", DoubleValue(position.z));
        stream += m->AssignStreams(stream);
        // It ignores a position set before it starts, and draws its own start (uniform over
        // the square) when initialised: start it, then move it to the device's place.
        m->Initialize();
        m->SetPosition(position);
        return;
    }
    stream += m->AssignStreams(stream);
    m->SetPosition(position);
}

} // namespace ns3
