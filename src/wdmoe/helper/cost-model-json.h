// The cost model (model/cost-model.h) in JSON: inline dimensions read from a config's
// "cost_model" object, and the dimensions written to result files ("model that was priced").
#ifndef WDMOE_COST_MODEL_JSON_H
#define WDMOE_COST_MODEL_JSON_H

#include "cost-model.h"

#include <nlohmann/json.hpp>

namespace ns3
{

class JsonConfigReader;

/// Inline dimensions from a config object (a string preset such as "mixtral-8x7b" is the
/// caller's to recognise and pass to CostModel::FromPreset). Keys: "d_model" and "d_ff"
/// (required), "name" (default "custom"), "layers" (32), "experts" (8), "top_k" (2), "heads"
/// (32), "kv_heads" (8), "head_dim" (d_model / heads), "vocab" (32000),
/// "weight_bytes_per_param" (2), "activation_bits" (16), "header_bytes" (64). Unknown keys and
/// inconsistent dimensions are JsonConfigError naming the file and the field.
CostModel ReadCostModel(const JsonConfigReader& r);

/// The dimensions, for result files ("model that was priced"), with the expert's bytes and
/// FLOPs per token.
nlohmann::json CostModelJson(const CostModel& m);

} // namespace ns3

#endif
