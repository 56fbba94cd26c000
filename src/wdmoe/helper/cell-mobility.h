// Device mobility in the cell: which ns-3 mobility models a cell's devices can use, and how each
// is bounded by the cell and started at its position in the disc.
#ifndef WDMOE_CELL_MOBILITY_H
#define WDMOE_CELL_MOBILITY_H

#include "ns3/mobility-model.h"
#include "ns3/ptr.h"
#include "ns3/vector.h"

#include <cstdint>
#include <string>
#include <vector>

namespace ns3
{

class JsonConfigReader;

/// The cell.mobility values that work: "static" and the ns-3 mobility models the cell can bound
/// by its radius and start at a device's position (ns3::RandomWalk2dMobilityModel,
/// ns3::RandomDirection2dMobilityModel,
/// ns3::GaussMarkovMobilityModel, ns3::RandomWaypointMobilityModel,
/// ns3::SteadyStateRandomWaypointMobilityModel, ns3::ConstantPositionMobilityModel).
std::vector<std::string> CellMobilityModels();

/// Refuses a cell.mobility value outside CellMobilityModels() with a JsonConfigError naming
/// the field, saying why (a model whose motion no config field sets, such as
/// ns3::ConstantVelocityMobilityModel, or no mobility model at all) and listing those that work.
void CheckCellMobility(const JsonConfigReader& root,
                       const std::string& field,
                       const std::string& mobility);

/// A device's mobility model of a checked cell.mobility value ("static": constant position).
Ptr<MobilityModel> CreateCellMobility(const std::string& mobility);

/// Bounds m by the square around the cell of radius radiusM (a random waypoint's waypoints:
/// uniform in the disc), assigns its random streams from stream on (advancing it) and places it
/// at position (inside the disc), in the order each model needs: a steady-state random waypoint
/// draws its own start when initialised, so it is initialised first and then moved there.
void PlaceInCell(Ptr<MobilityModel> m, double radiusM, const Vector& position, int64_t& stream);

} // namespace ns3

#endif
