#include "gating.h"

#include "file-io.h"
#include "json-input.h"

#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace wdmoe
{
namespace llm
{

void
AdaptiveDecision(const float* probs,
                 int numExperts,
                 double sensitivity,
                 double threshold,
                 RoutingDecision& decision)
{
    if (numExperts < 2)
    {
        throw std::invalid_argument("adaptive gating needs at least 2 experts, got " +
                                    std::to_string(numExperts));
    }
    // TopKDecision gives the top-2 in order (ties to the lower index) with w1 + w2 = 1.
    TopKDecision(probs, numExperts, 2, decision);
    const double w2 = decision.weights[1];
    // Strictly below: a product equal to T keeps both experts, and T = 0 never drops.
    if (sensitivity * w2 * w2 < threshold)
    {
        decision.experts.resize(1);
        decision.weights.assign(1, 1.0f);
    }
}

AdaptiveGating::AdaptiveGating(std::vector<double> sensitivity,
                               double threshold,
                               bool applyToPrefill)
    : m_sensitivity(std::move(sensitivity)),
      m_threshold(threshold),
      m_applyToPrefill(applyToPrefill)
{
    if (!std::isfinite(threshold) || threshold < 0)
    {
        throw std::invalid_argument("adaptive gating threshold must be a finite number >= 0, got " +
                                    std::to_string(threshold));
    }
    for (std::size_t l = 0; l < m_sensitivity.size(); ++l)
    {
        if (!std::isfinite(m_sensitivity[l]) || m_sensitivity[l] < 0)
        {
            throw std::invalid_argument("adaptive gating sensitivity of layer " +
                                        std::to_string(l) + " must be a finite number >= 0, got " +
                                        std::to_string(m_sensitivity[l]));
        }
    }
}

void
AdaptiveGating::Decide(const RoutingRequest& request, RoutingDecision& decision)
{
    if (request.layer < 0 || request.layer >= int(m_sensitivity.size()))
    {
        throw std::out_of_range("adaptive gating has sensitivities for " +
                                std::to_string(m_sensitivity.size()) + " layers, asked for layer " +
                                std::to_string(request.layer));
    }
    const bool prefill = request.batchSize > 1;
    if (request.topK != 2 || (prefill && !m_applyToPrefill))
    {
        TopKDecision(request.gateProbs, request.numExperts, request.topK, decision);
        return;
    }
    AdaptiveDecision(request.gateProbs,
                     request.numExperts,
                     m_sensitivity[request.layer],
                     m_threshold,
                     decision);
}

// ------------------------------------------------------------------------- sensitivity.json

namespace
{

using Json = nlohmann::json;

const char* kSensitivityFile = "sensitivity.json";

std::string
SensitivityPath(const std::string& modelDir)
{
    return modelDir + "/" + kSensitivityFile;
}

/// The folder's own name ("models/kjv-moe/" and "." inside it both give "kjv-moe").
std::string
FolderName(const std::string& dir)
{
    std::error_code error;
    std::filesystem::path path = std::filesystem::absolute(dir, error).lexically_normal();
    if (error)
    {
        path = std::filesystem::path(dir).lexically_normal();
    }
    if (!path.has_filename())
    {
        path = path.parent_path(); // a trailing separator leaves an empty file name
    }
    return path.filename().string();
}

LoadError
FieldError(const std::string& file, const std::string& field, const std::string& problem)
{
    return LoadError(file, "field \"" + field + "\" " + problem);
}

const Json&
Field(const std::string& file, const Json& object, const std::string& prefix, const char* key)
{
    const auto it = object.find(key);
    if (it == object.end())
    {
        throw FieldError(file, prefix + key, "is missing");
    }
    return *it;
}

double
Number(const std::string& file, const Json& object, const std::string& prefix, const char* key)
{
    const Json& j = Field(file, object, prefix, key);
    if (!j.is_number() || !std::isfinite(j.get<double>()))
    {
        throw FieldError(file, prefix + key, "must be a finite number, got " + DescribeJson(j));
    }
    return j.get<double>();
}

double
NonNegativeNumber(const std::string& file,
                  const Json& object,
                  const std::string& prefix,
                  const char* key)
{
    const double v = Number(file, object, prefix, key);
    if (v < 0)
    {
        throw FieldError(file,
                         prefix + key,
                         "must be a finite number >= 0, got " +
                             DescribeJson(Field(file, object, prefix, key)));
    }
    return v;
}

long long
NonNegativeInteger(const std::string& file,
                   const Json& object,
                   const std::string& prefix,
                   const char* key)
{
    const Json& j = Field(file, object, prefix, key);
    // nlohmann stores every non-negative integer as unsigned.
    if (!j.is_number_unsigned() || j.get<std::uint64_t>() > std::uint64_t(1) << 62)
    {
        throw FieldError(file, prefix + key, "must be an integer >= 0, got " + DescribeJson(j));
    }
    return (long long)j.get<std::uint64_t>();
}

} // namespace

SensitivityTable
SensitivityTable::Load(const std::string& modelDir, int layers)
{
    const std::string file = SensitivityPath(modelDir);
    std::error_code missing;
    if (!std::filesystem::exists(file, missing))
    {
        throw LoadError(file,
                        "cannot open the file (write it with ./wdmoe calibrate " + modelDir +
                            " TEXT_FILE)");
    }
    const Json root = ReadJsonFile(file);
    if (!root.is_object())
    {
        throw LoadError(file, "must be a JSON object, got " + DescribeJson(root));
    }

    SensitivityTable table;
    const Json& name = Field(file, root, "", "calibration_text");
    if (!name.is_string())
    {
        throw FieldError(file, "calibration_text", "must be a string, got " + DescribeJson(name));
    }
    table.calibrationText = name.get<std::string>();
    table.calibrationTokens = NonNegativeInteger(file, root, "", "calibration_tokens");
    const long long window = NonNegativeInteger(file, root, "", "window");
    if (window > INT_MAX)
    {
        throw FieldError(file, "window", "is too large, got " + std::to_string(window));
    }
    table.window = int(window);
    const Json& list = Field(file, root, "", "layers");
    if (!list.is_array())
    {
        throw FieldError(file, "layers", "must be an array, got " + DescribeJson(list));
    }
    if (int(list.size()) != layers)
    {
        throw FieldError(file,
                         "layers",
                         "has " + std::to_string(list.size()) + " entries but the model has " +
                             std::to_string(layers) + " layers");
    }
    for (int l = 0; l < layers; ++l)
    {
        const std::string prefix = "layers[" + std::to_string(l) + "].";
        const Json& entry = list[l];
        if (!entry.is_object())
        {
            throw FieldError(file,
                             "layers[" + std::to_string(l) + "]",
                             "must be an object, got " + DescribeJson(entry));
        }
        if (NonNegativeInteger(file, entry, prefix, "layer") != l)
        {
            throw FieldError(file,
                             prefix + "layer",
                             "must be " + std::to_string(l) + " (layers in order), got " +
                                 DescribeJson(entry["layer"]));
        }
        table.meanDeltaNll.push_back(Number(file, entry, prefix, "mean_delta_nll"));
        table.meanSecondWeightSq.push_back(
            NonNegativeNumber(file, entry, prefix, "mean_second_weight_sq"));
        table.sensitivity.push_back(NonNegativeNumber(file, entry, prefix, "sensitivity"));
    }
    return table;
}

void
SensitivityTable::Save(const std::string& modelDir) const
{
    const std::string file = SensitivityPath(modelDir);
    if (meanDeltaNll.size() != sensitivity.size() ||
        meanSecondWeightSq.size() != sensitivity.size())
    {
        throw std::invalid_argument(file + ": per-layer vectors of different lengths");
    }
    nlohmann::ordered_json root;
    root["model"] = FolderName(modelDir);
    root["calibration_text"] = calibrationText;
    root["calibration_tokens"] = calibrationTokens;
    root["window"] = window;
    root["layers"] = nlohmann::ordered_json::array();
    for (std::size_t l = 0; l < sensitivity.size(); ++l)
    {
        nlohmann::ordered_json entry;
        entry["layer"] = l;
        entry["mean_delta_nll"] = meanDeltaNll[l];
        entry["mean_second_weight_sq"] = meanSecondWeightSq[l];
        entry["sensitivity"] = sensitivity[l];
        root["layers"].push_back(entry);
    }
    const std::string content = root.dump(2) + "\n";

    WriteFileAtomically(file, content);
}

} // namespace llm
} // namespace wdmoe
