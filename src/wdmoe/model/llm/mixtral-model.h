// A Mixtral-architecture MoE language model (Hugging Face MixtralForCausalLM), on the CPU.
#ifndef WDMOE_LLM_MIXTRAL_MODEL_H
#define WDMOE_LLM_MIXTRAL_MODEL_H

#include "dense-matrix.h"
#include "dtype.h"
#include "expert-kernel.h"
#include "model-config.h"
#include "routing.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace wdmoe
{
namespace llm
{

class ThreadPool;
class WeightStore;
struct TensorView;

struct LoadOptions
{
    /// Store and compute every weight matrix in this type (rounding from the file's type when
    /// it differs). Unset: the file's own type. Activations are always float32.
    bool overrideDType = false;
    DType dtype = DType::F32;
    /// Expert kernel threads; <= 0: one per hardware core.
    int threads = 0;
    KernelIsa isa = BestKernelIsa();
    /// Attention, router, LM head and embedding: in the stored type through the expert
    /// kernels on every thread (the default), or float32 copies through Eigen on one thread
    /// (the engine's original path; it sums in another order, so NLL's last digits differ).
    DenseWeights dense = DenseWeights::Stored;
};

/// Which tensor layout the checkpoint uses for its experts.
enum class ExpertLayout
{
    Classic, ///< model.layers.N.block_sparse_moe.{gate, experts.E.w1/w2/w3}.weight
    Packed,  ///< model.layers.N.mlp.{gate.weight, experts.gate_up_proj, experts.down_proj}
};

/// Keys and values of every layer for the tokens seen so far.
class KvCache
{
  public:
    KvCache(int layers, int capacity, int kvWidth);

    int Length() const { return m_length; }

    int Capacity() const { return m_capacity; }

    void Clear() { m_length = 0; }

    /// Forgets every token from position `length` on (0 <= length <= Length()).
    void Truncate(int length);

  private:
    friend class MixtralModel;
    friend class LayerStepper;
    int m_capacity;
    int m_kvWidth;
    int m_length = 0;
    std::vector<std::vector<float>> m_keys;   ///< per layer [capacity][kvWidth]
    std::vector<std::vector<float>> m_values; ///< per layer [capacity][kvWidth]
};

class MixtralModel
{
  public:
    /// Loads config.json and the safetensors weights of a model folder. Every tensor is
    /// checked against the config; problems are LoadError naming the file and the tensor.
    static std::unique_ptr<MixtralModel> Load(const std::string& modelDir,
                                              const LoadOptions& options = LoadOptions());
    ~MixtralModel();

    const ModelConfig& Config() const { return m_config; }

    const std::string& Dir() const { return m_dir; }

    DType WeightDType() const { return m_dtype; }

    /// The type attention, router, LM head and embedding are held in for compute: float32
    /// when widened at load (rounded through WeightDType() first), else WeightDType(); the
    /// experts are always in WeightDType().
    DType DenseDType() const { return m_dense == DenseWeights::Stored ? m_dtype : DType::F32; }

    DenseWeights Dense() const { return m_dense; }

    ExpertLayout Layout() const { return m_layout; }

    KernelIsa Isa() const { return m_isa; }

    int Threads() const;

    /// A cache for up to capacity tokens (default: max_position_embeddings); size it by the
    /// tokens a run needs. Throws LoadError naming config.json's sliding_window when capacity
    /// exceeds it, and std::runtime_error naming the size when the machine lacks the memory.
    KvCache NewCache(int capacity = 0) const;

    /// One line per tensor the weights loader skipped (dtypes the engine does not read).
    std::vector<std::string> Notes() const;

    /// Runs n tokens at positions cache.Length() .. cache.Length() + n - 1 (n = 1 is decode,
    /// n > 1 is prefill), appends them to the cache and writes logits[n][vocab] (logits may
    /// be null to skip the LM head). policy answers the routing question per token and layer;
    /// null means the model's own top-k. Throws std::out_of_range when the cache is full and
    /// std::invalid_argument for a token outside the vocabulary or an invalid decision.
    void Forward(KvCache& cache,
                 const int* tokens,
                 int n,
                 float* logits,
                 RoutingPolicy* policy = nullptr);

    /// One expert's weights, as the kernel sees them.
    const ExpertWeights& Expert(int layer, int expert) const;

  private:
    friend class LayerStepper;
    MixtralModel() = default;
    struct Layer;
    void LoadWeights(const WeightStore& store, const LoadOptions& options);
    std::unique_ptr<Layer> LoadLayer(const WeightStore& store, int layer);
    /// One expert's weights: classic (one tensor per matrix) or packed (all experts of a layer
    /// in two tensors).
    ExpertWeights LoadExpert(const WeightStore& store, const std::string& prefix, int expert);
    /// count elements of t from offsetElements, in the model's dtype: in the mapping when t
    /// has it, else converted once into a buffer the model owns.
    const void* ExpertMatrix(const TensorView& t, std::size_t offsetElements, std::size_t count);
    /// A dense matrix [rows][cols] held as m_dense says.
    DenseMatrix LoadDense(const TensorView& t);
    void Attention(int layerIndex, KvCache& cache, int n, const float* normed, float* out);

    ModelConfig m_config;
    std::string m_dir;
    DType m_dtype = DType::F32;
    ExpertLayout m_layout = ExpertLayout::Classic;
    KernelIsa m_isa = KernelIsa::Scalar;
    DenseWeights m_dense = DenseWeights::Stored;
    std::unique_ptr<ThreadPool> m_pool;
    std::shared_ptr<WeightStore> m_store; ///< keeps the mappings alive
    std::vector<std::unique_ptr<Layer>> m_layers;
    DenseMatrix m_embed;       ///< [vocab][d_model]
    std::vector<float> m_norm; ///< final RMSNorm weight
    DenseMatrix m_lmHead;      ///< [vocab][d_model]; a copy of m_embed when tied
    std::vector<float> m_invFreq;
    std::vector<std::vector<std::uint8_t>> m_ownedExperts; ///< converted expert weights
    TopKRouting m_topK;
};

/// A forward pass that stops at every MoE layer, so that the caller can decide the experts
/// after the router has run and run them when it is ready (the network simulator times the
/// transfers between the two). MixtralModel::Forward is this loop with a RoutingPolicy:
///
///   LayerStepper pass(model, cache, tokens, n);
///   while (!pass.Done()) {
///       pass.Attend();                      // attention + router of pass.Layer()
///       ... decide experts from pass.Request(i) for every token i ...
///       pass.RunExperts(decisions);         // experts, residual add, next layer
///   }
///   pass.Logits(out);
class LayerStepper
{
  public:
    /// Starts a pass over n tokens placed after those already in the cache. Throws like
    /// MixtralModel::Forward for a full cache or a token outside the vocabulary.
    LayerStepper(MixtralModel& model, KvCache& cache, const int* tokens, int n);

    int Layer() const { return m_layer; }

    int Tokens() const { return m_n; }

    /// Position of the first token of this pass in its sequence.
    int FirstPosition() const { return m_position0; }

    bool Done() const;
    /// Runs attention and the router of the current layer (once per layer).
    void Attend();
    /// After Attend(): what the MoE layer knows about token i (0 <= i < Tokens()).
    RoutingRequest Request(int token) const;
    /// After Attend() at a layer l < last: the router softmax of layer l + 1 applied to this
    /// layer's MoE input of token i (AdapMoE's next-layer prediction), numExperts values into
    /// probs. Throws std::logic_error before Attend(), at the last layer or for a bad token.
    void PredictNextLayer(int token, float* probs) const;
    /// Runs decisions[i] for token i (validated), adds them to the residual stream and moves
    /// to the next layer. After the last layer the tokens are committed to the cache.
    void RunExperts(const std::vector<RoutingDecision>& decisions);
    /// After the last layer: final norm and LM head, logits[n][vocab].
    void Logits(float* logits);

  private:
    /// One expert over the tokens `rows` (their MoE inputs gathered into `in`), its outputs
    /// added to their residual streams with `weights`.
    void RunExpert(const ExpertWeights& expert,
                   const std::vector<int>& rows,
                   const std::vector<float>& weights,
                   std::vector<float>& in,
                   std::vector<float>& out);

    MixtralModel& m_model;
    KvCache& m_cache;
    int m_n;
    int m_position0;
    int m_layer = 0;
    bool m_attended = false;
    std::vector<float> m_x;      ///< residual stream [n][d]
    std::vector<float> m_normed; ///< MoE input of the current layer [n][d]
    std::vector<float> m_probs;  ///< router softmax of the current layer [n][experts]
};

} // namespace llm
} // namespace wdmoe

#endif
