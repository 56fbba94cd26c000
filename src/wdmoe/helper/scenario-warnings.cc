#include "scenario-warnings.h"

namespace ns3
{

std::vector<std::string>
FailureWarnings(const std::vector<ScenarioConfig::Failure>& failures,
                const ExpertPlacement& placement)
{
    std::vector<std::string> warnings;
    for (std::size_t i = 0; i < failures.size(); ++i)
    {
        const int device = failures[i].device;
        if (placement.ExpertsOn(device).empty())
        {
            warnings.push_back("failures[" + std::to_string(i) + "]: device " +
                               std::to_string(device) +
                               " holds no expert (the placement left it empty), so its "
                               "failure changes nothing");
        }
    }
    return warnings;
}

} // namespace ns3
