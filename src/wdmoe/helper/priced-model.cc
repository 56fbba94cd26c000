#include "priced-model.h"

#include "cost-model-json.h"
#include "json-config.h"

#include <algorithm>

namespace ns3
{

namespace
{

std::string
PresetList()
{
    std::string list = "\"self\"";
    for (const auto& p : CostModel::PresetNames())
    {
        list += ", \"" + p + "\"";
    }
    return list;
}

CostModel
ReadPreset(const JsonConfigReader& root, const std::string& field, const std::string& name)
{
    const auto presets = CostModel::PresetNames();
    if (std::find(presets.begin(), presets.end(), name) == presets.end())
    {
        root.Fail(field,
                  "must be one of " + PresetList() +
                      ", a {\"preset\": ...} object or an object of dimensions, got " +
                      QuoteForMessage(name));
    }
    return CostModel::FromPreset(name);
}

/// {"preset": NAME, "layers": N | "routed"}.
PricedModel
ReadPresetObject(const JsonConfigReader& object)
{
    object.AllowOnly({"preset", "layers"});
    PricedModel priced;
    priced.architecture = ReadPreset(object, "preset", object.String("preset"));
    const nlohmann::json& json = object.Json();
    if (json.contains("layers") && json["layers"].is_string())
    {
        const nlohmann::json& layers = json["layers"];
        if (layers.get<std::string>() != "routed")
        {
            object.Fail("layers",
                        "must be a number of layers or \"routed\" (price only the routed "
                        "model's layers), got " +
                            QuoteForMessage(layers.get<std::string>()));
        }
        priced.routedLayersOnly = true;
    }
    else if (object.Has("layers"))
    {
        priced.architecture.layers = int(object.Integer("layers", 0, 1, 1 << 20));
    }
    return priced;
}

} // namespace

PricedModel
PricedModel::Read(const JsonConfigReader& root)
{
    PricedModel priced;
    if (!root.Has("cost_model"))
    {
        priced.architecture = CostModel::Mixtral8x7B();
        return priced;
    }
    const nlohmann::json& value = root.Json()["cost_model"];
    if (value.is_string())
    {
        const std::string name = value.get<std::string>();
        priced.self = name == "self";
        if (!priced.self)
        {
            priced.architecture = ReadPreset(root, "cost_model", name);
        }
        return priced;
    }
    if (!value.is_object())
    {
        root.Fail("cost_model", "must be a string or an object");
    }
    const JsonConfigReader object = root.Object("cost_model");
    if (object.Has("preset"))
    {
        return ReadPresetObject(object);
    }
    if (value.contains("layers") && value["layers"].is_string())
    {
        object.Fail("layers",
                    "\"routed\" prices the routed layers of a preset's architecture "
                    "({\"preset\": NAME, \"layers\": \"routed\"}); inline dimensions give "
                    "their depth as a number");
    }
    priced.architecture = ReadCostModel(object);
    return priced;
}

CostModel
PricedModel::Resolve(const JsonConfigReader& root,
                     const CostModel& routedDimensions,
                     int routedLayers) const
{
    if (self)
    {
        return routedDimensions;
    }
    if (!routedLayersOnly && architecture.layers != routedLayers)
    {
        root.Fail("cost_model",
                  "prices " + std::to_string(architecture.layers) + " layers (" +
                      architecture.name + ") but the routed model has " +
                      std::to_string(routedLayers) +
                      ": route with a model of the priced depth, or say how to price it, e.g. "
                      "{\"preset\": \"" +
                      architecture.name +
                      "\", \"layers\": \"routed\"} (only the routed layers are priced and the "
                      "results say \"latency covers " +
                      std::to_string(routedLayers) + " of " + std::to_string(architecture.layers) +
                      " layers\")");
    }
    return architecture;
}

std::string
PricedModel::CoverageText(int layersInLatency, int pricedLayers)
{
    return "latency covers " + std::to_string(layersInLatency) + " of " +
           std::to_string(pricedLayers) + " layers";
}

} // namespace ns3
