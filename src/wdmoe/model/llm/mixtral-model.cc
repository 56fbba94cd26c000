#include "mixtral-model.h"

#include "finite-values.h"
#include "memory-budget.h"
#include "safetensors.h"
#include "thread-pool.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

namespace wdmoe
{
namespace llm
{

namespace
{

/// Hugging Face's MixtralRMSNorm: x / sqrt(mean(x^2) + eps) * weight, in float32.
void
RmsNorm(const float* x, const std::vector<float>& weight, int d, double eps, float* out)
{
    double sumSquares = 0.0;
    for (int i = 0; i < d; ++i)
    {
        sumSquares += double(x[i]) * x[i];
    }
    const float scale = float(1.0 / std::sqrt(sumSquares / d + eps));
    for (int i = 0; i < d; ++i)
    {
        out[i] = weight[i] * (x[i] * scale);
    }
}

/// Rotate-half RoPE on one head vector (transformers' apply_rotary_pos_emb).
void
ApplyRope(float* v, int headDim, int position, const std::vector<float>& invFreq)
{
    const int half = headDim / 2;
    for (int i = 0; i < half; ++i)
    {
        const float angle = float(position) * invFreq[i];
        const float c = float(std::cos(double(angle)));
        const float s = float(std::sin(double(angle)));
        const float x1 = v[i];
        const float x2 = v[i + half];
        v[i] = x1 * c - x2 * s;
        v[i + half] = x2 * c + x1 * s;
    }
}

void
SoftmaxInPlace(float* x, int n)
{
    const float maxValue = *std::max_element(x, x + n);
    double sum = 0.0;
    for (int i = 0; i < n; ++i)
    {
        const double e = std::exp(double(x[i]) - maxValue);
        x[i] = float(e);
        sum += e;
    }
    for (int i = 0; i < n; ++i)
    {
        x[i] = float(x[i] / sum);
    }
}

/// A float32 copy of a tensor, rounded through `storage` when that differs from float32, so
/// that a bf16 or f16 run sees exactly the precision it would have stored.
std::vector<float>
Widen(const TensorView& t, DType storage)
{
    RequireMemory(t.file + ": tensor \"" + t.name + "\" " + t.ShapeString() + " in float32",
                  std::uint64_t(t.Numel()) * sizeof(float));
    RequireFinite(t, 0, std::size_t(t.Numel()));
    std::vector<float> out(std::size_t(t.Numel()));
    ToF32(t.dtype, t.data, out.data(), out.size());
    if (storage != DType::F32 && storage != t.dtype)
    {
        std::vector<std::uint8_t> narrow(out.size() * DTypeSize(storage));
        FromF32(storage, out.data(), narrow.data(), out.size());
        ToF32(storage, narrow.data(), out.data(), out.size());
    }
    return out;
}

std::string
LayerPrefix(int layer)
{
    return "model.layers." + std::to_string(layer) + ".";
}

} // namespace

struct MixtralModel::Layer
{
    std::vector<float> inputNorm;
    std::vector<float> postNorm;
    DenseMatrix wq, wk, wv, wo; ///< [out][in]
    DenseMatrix gate;           ///< [experts][d_model]
    std::vector<ExpertWeights> experts;
};

KvCache::KvCache(int layers, int capacity, int kvWidth)
    : m_capacity(capacity),
      m_kvWidth(kvWidth),
      m_keys(layers, std::vector<float>(std::size_t(capacity) * kvWidth)),
      m_values(layers, std::vector<float>(std::size_t(capacity) * kvWidth))
{
}

void
KvCache::Truncate(int length)
{
    if (length < 0 || length > m_length)
    {
        throw std::out_of_range("KvCache::Truncate: length " + std::to_string(length) +
                                " outside [0, " + std::to_string(m_length) + "]");
    }
    m_length = length;
}

MixtralModel::~MixtralModel() = default;

std::unique_ptr<MixtralModel>
MixtralModel::Load(const std::string& modelDir, const LoadOptions& options)
{
    std::unique_ptr<MixtralModel> model(new MixtralModel());
    model->m_dir = modelDir;
    model->m_config = ModelConfig::Load(modelDir + "/config.json");
    CheckKernelIsaSupported(options.isa);
    model->m_isa = options.isa;
    model->m_dense = options.dense;
    model->m_pool = std::make_unique<ThreadPool>(options.threads);
    model->m_store = std::make_shared<WeightStore>(WeightStore::Open(modelDir));
    try
    {
        model->LoadWeights(*model->m_store, options);
    }
    catch (const std::bad_alloc&)
    {
        // RequireMemory checked each tensor; this is the allocator disagreeing.
        throw LoadError(modelDir, "out of memory while loading the weights");
    }
    return model;
}

namespace
{

/// Classic (block_sparse_moe) or packed (mlp.experts) tensors, told by layer 0's router.
ExpertLayout
DetectLayout(const WeightStore& store)
{
    if (store.Has(LayerPrefix(0) + "block_sparse_moe.gate.weight"))
    {
        return ExpertLayout::Classic;
    }
    if (store.Has(LayerPrefix(0) + "mlp.gate.weight"))
    {
        return ExpertLayout::Packed;
    }
    throw LoadError(store.Dir(),
                    "no MoE router for layer 0: expected either "
                    "model.layers.0.block_sparse_moe.gate.weight (classic layout) or "
                    "model.layers.0.mlp.gate.weight (packed layout)");
}

} // namespace

void
MixtralModel::LoadWeights(const WeightStore& store, const LoadOptions& options)
{
    const ModelConfig& c = m_config;
    const std::int64_t d = c.hiddenSize;
    const TensorView& embed = store.Get("model.embed_tokens.weight", {c.vocabSize, d});
    m_dtype = options.overrideDType ? options.dtype : embed.dtype;
    m_layout = DetectLayout(store);
    m_embed = LoadDense(embed);
    for (int l = 0; l < c.numHiddenLayers; ++l)
    {
        m_layers.push_back(LoadLayer(store, l));
    }
    m_norm = Widen(store.Get("model.norm.weight", {d}), m_dtype);
    if (c.tieWordEmbeddings)
    {
        m_lmHead = m_embed;
    }
    else
    {
        m_lmHead = LoadDense(store.Get("lm_head.weight", {c.vocabSize, d}));
    }

    // transformers computes inv_freq in float32: 1 / theta^(2i / head_dim).
    for (int i = 0; i < c.headDim / 2; ++i)
    {
        const float exponent = float(2 * i) / float(c.headDim);
        m_invFreq.push_back(1.0f / float(std::pow(c.ropeTheta, double(exponent))));
    }
}

std::unique_ptr<MixtralModel::Layer>
MixtralModel::LoadLayer(const WeightStore& store, int l)
{
    const ModelConfig& c = m_config;
    const std::int64_t d = c.hiddenSize;
    const std::int64_t qWidth = std::int64_t(c.numAttentionHeads) * c.headDim;
    const std::int64_t kvWidth = std::int64_t(c.numKeyValueHeads) * c.headDim;
    const std::string p = LayerPrefix(l);
    auto layer = std::make_unique<Layer>();
    layer->inputNorm = Widen(store.Get(p + "input_layernorm.weight", {d}), m_dtype);
    layer->postNorm = Widen(store.Get(p + "post_attention_layernorm.weight", {d}), m_dtype);
    layer->wq = LoadDense(store.Get(p + "self_attn.q_proj.weight", {qWidth, d}));
    layer->wk = LoadDense(store.Get(p + "self_attn.k_proj.weight", {kvWidth, d}));
    layer->wv = LoadDense(store.Get(p + "self_attn.v_proj.weight", {kvWidth, d}));
    layer->wo = LoadDense(store.Get(p + "self_attn.o_proj.weight", {d, qWidth}));
    const std::string router =
        m_layout == ExpertLayout::Classic ? "block_sparse_moe.gate.weight" : "mlp.gate.weight";
    layer->gate = LoadDense(store.Get(p + router, {c.numLocalExperts, d}));
    for (int e = 0; e < c.numLocalExperts; ++e)
    {
        layer->experts.push_back(LoadExpert(store, p, e));
    }
    return layer;
}

ExpertWeights
MixtralModel::LoadExpert(const WeightStore& store, const std::string& p, int e)
{
    const std::int64_t d = m_config.hiddenSize;
    const std::int64_t ff = m_config.intermediateSize;
    const std::size_t matrix = std::size_t(d * ff);
    ExpertWeights w;
    w.dtype = m_dtype;
    w.dModel = int(d);
    w.dFf = int(ff);
    if (m_layout == ExpertLayout::Classic)
    {
        const std::string q = p + "block_sparse_moe.experts." + std::to_string(e) + ".";
        w.w1 = ExpertMatrix(store.Get(q + "w1.weight", {ff, d}), 0, matrix);
        w.w3 = ExpertMatrix(store.Get(q + "w3.weight", {ff, d}), 0, matrix);
        w.w2 = ExpertMatrix(store.Get(q + "w2.weight", {d, ff}), 0, matrix);
        return w;
    }
    const std::int64_t experts = m_config.numLocalExperts;
    const TensorView& gateUp = store.Get(p + "mlp.experts.gate_up_proj", {experts, 2 * ff, d});
    const TensorView& down = store.Get(p + "mlp.experts.down_proj", {experts, d, ff});
    // gate_up_proj[e] holds the gate (w1) rows, then the up (w3) rows.
    w.w1 = ExpertMatrix(gateUp, std::size_t(e) * 2 * matrix, matrix);
    w.w3 = ExpertMatrix(gateUp, std::size_t(e) * 2 * matrix + matrix, matrix);
    w.w2 = ExpertMatrix(down, std::size_t(e) * matrix, matrix);
    return w;
}

const void*
MixtralModel::ExpertMatrix(const TensorView& t, std::size_t offsetElements, std::size_t count)
{
    const std::uint8_t* src = t.data + offsetElements * DTypeSize(t.dtype);
    RequireFinite(t, offsetElements, count);
    if (t.dtype == m_dtype)
    {
        return src;
    }
    RequireMemory(t.file + ": tensor \"" + t.name + "\" in " + DTypeName(m_dtype),
                  count * (sizeof(float) + DTypeSize(m_dtype)));
    std::vector<float> wide(count);
    ToF32(t.dtype, src, wide.data(), count);
    m_ownedExperts.emplace_back(count * DTypeSize(m_dtype));
    FromF32(m_dtype, wide.data(), m_ownedExperts.back().data(), count);
    return m_ownedExperts.back().data();
}

DenseMatrix
MixtralModel::LoadDense(const TensorView& t)
{
    const int rows = int(t.shape.at(0));
    const int cols = int(t.shape.at(1));
    if (m_dense == DenseWeights::WidenedF32)
    {
        return DenseMatrix::Widened(Widen(t, m_dtype), rows, cols);
    }
    // Kept in the mapping, it is still read whole at load (the finiteness check) and, for the
    // LM head, at every token: a tensor larger than the memory would page for minutes, so it
    // is refused by name and size as the widened copy is.
    RequireMemory(t.file + ": tensor \"" + t.name + "\" " + t.ShapeString() + " in " +
                      DTypeName(m_dtype),
                  std::uint64_t(t.Numel()) * DTypeSize(m_dtype));
    MatrixWeights stored;
    stored.dtype = m_dtype;
    stored.data = ExpertMatrix(t, 0, std::size_t(t.Numel()));
    stored.rows = rows;
    stored.cols = cols;
    return DenseMatrix::Stored(stored);
}

int
MixtralModel::Threads() const
{
    return m_pool->Size();
}

KvCache
MixtralModel::NewCache(int capacity) const
{
    if (capacity <= 0)
    {
        capacity = m_config.maxPositionEmbeddings;
    }
    const int window = m_config.slidingWindow;
    if (window > 0 && capacity > window)
    {
        throw LoadError(m_dir + "/config.json",
                        "field \"sliding_window\" is " + std::to_string(window) +
                            ", shorter than this run's window of " + std::to_string(capacity) +
                            " tokens: the engine does not implement sliding-window attention "
                            "(use windows of at most " +
                            std::to_string(window) + " tokens)");
    }
    const int kvWidth = m_config.numKeyValueHeads * m_config.headDim;
    const std::string what = "a KV cache of " + std::to_string(capacity) + " tokens (" +
                             std::to_string(m_config.numHiddenLayers) + " layers, " +
                             std::to_string(kvWidth) + " keys and values each per token)";
    RequireMemory(what, 2 * std::uint64_t(m_config.numHiddenLayers) * capacity * kvWidth * 4);
    try
    {
        return KvCache(m_config.numHiddenLayers, capacity, kvWidth);
    }
    catch (const std::bad_alloc&)
    {
        throw std::runtime_error(what + ": out of memory");
    }
}

std::vector<std::string>
MixtralModel::Notes() const
{
    return m_store->Notes();
}

const ExpertWeights&
MixtralModel::Expert(int layer, int expert) const
{
    return m_layers.at(layer)->experts.at(expert);
}

void
MixtralModel::Forward(KvCache& cache,
                      const int* tokens,
                      int n,
                      float* logits,
                      RoutingPolicy* policy)
{
    if (!policy)
    {
        policy = &m_topK;
    }
    LayerStepper pass(*this, cache, tokens, n);
    std::vector<RoutingDecision> decisions(n);
    while (!pass.Done())
    {
        pass.Attend();
        for (int i = 0; i < n; ++i)
        {
            decisions[i].Clear();
            policy->Decide(pass.Request(i), decisions[i]);
        }
        pass.RunExperts(decisions);
    }
    if (logits)
    {
        pass.Logits(logits);
    }
}

LayerStepper::LayerStepper(MixtralModel& model, KvCache& cache, const int* tokens, int n)
    : m_model(model),
      m_cache(cache),
      m_n(n),
      m_position0(cache.Length())
{
    const ModelConfig& c = model.m_config;
    const int d = c.hiddenSize;
    if (n <= 0)
    {
        throw std::invalid_argument("Forward needs at least one token");
    }
    if (cache.Length() + n > cache.Capacity())
    {
        throw std::out_of_range("KV cache holds " + std::to_string(cache.Capacity()) + " tokens; " +
                                std::to_string(cache.Length() + n) + " requested");
    }
    m_x.resize(std::size_t(n) * d);
    m_normed.resize(m_x.size());
    m_probs.resize(std::size_t(n) * c.numLocalExperts);
    for (int i = 0; i < n; ++i)
    {
        if (tokens[i] < 0 || tokens[i] >= c.vocabSize)
        {
            throw std::invalid_argument("token " + std::to_string(tokens[i]) +
                                        " is outside the vocabulary [0, " +
                                        std::to_string(c.vocabSize) + ")");
        }
        model.m_embed.Row(tokens[i], &m_x[std::size_t(i) * d]);
    }
}

bool
LayerStepper::Done() const
{
    return m_layer >= m_model.m_config.numHiddenLayers;
}

void
LayerStepper::Attend()
{
    if (Done() || m_attended)
    {
        throw std::logic_error("LayerStepper::Attend called twice for a layer or after the end");
    }
    const ModelConfig& c = m_model.m_config;
    const int d = c.hiddenSize;
    const MixtralModel::Layer& layer = *m_model.m_layers[m_layer];
    for (int i = 0; i < m_n; ++i)
    {
        RmsNorm(&m_x[std::size_t(i) * d],
                layer.inputNorm,
                d,
                c.rmsNormEps,
                &m_normed[std::size_t(i) * d]);
    }
    std::vector<float> attention(m_x.size());
    m_model.Attention(m_layer, m_cache, m_n, m_normed.data(), attention.data());
    for (std::size_t i = 0; i < m_x.size(); ++i)
    {
        m_x[i] += attention[i];
    }
    for (int i = 0; i < m_n; ++i)
    {
        RmsNorm(&m_x[std::size_t(i) * d],
                layer.postNorm,
                d,
                c.rmsNormEps,
                &m_normed[std::size_t(i) * d]);
    }
    layer.gate.Apply(m_normed.data(), m_n, m_probs.data(), m_model.m_pool.get(), m_model.m_isa);
    for (int i = 0; i < m_n; ++i)
    {
        SoftmaxInPlace(&m_probs[std::size_t(i) * c.numLocalExperts], c.numLocalExperts);
    }
    m_attended = true;
}

RoutingRequest
LayerStepper::Request(int token) const
{
    if (!m_attended || token < 0 || token >= m_n)
    {
        throw std::logic_error("LayerStepper::Request needs Attend() and a token of this pass");
    }
    const ModelConfig& c = m_model.m_config;
    RoutingRequest request;
    request.layer = m_layer;
    request.position = m_position0 + token;
    request.batchIndex = token;
    request.batchSize = m_n;
    request.topK = c.numExpertsPerTok;
    request.numExperts = c.numLocalExperts;
    request.gateProbs = &m_probs[std::size_t(token) * c.numLocalExperts];
    request.dModel = c.hiddenSize;
    request.hidden = &m_normed[std::size_t(token) * c.hiddenSize];
    return request;
}

void
LayerStepper::PredictNextLayer(int token, float* probs) const
{
    const ModelConfig& c = m_model.m_config;
    if (!m_attended || token < 0 || token >= m_n || m_layer + 1 >= c.numHiddenLayers)
    {
        throw std::logic_error("LayerStepper::PredictNextLayer needs Attend(), a layer before "
                               "the last and a token of this pass");
    }
    // The router of the next layer on this layer's MoE input: the same Linear and softmax
    // as Attend(), so a prediction equals the next router wherever the two inputs agree.
    const MixtralModel::Layer& next = *m_model.m_layers[m_layer + 1];
    next.gate.Apply(&m_normed[std::size_t(token) * c.hiddenSize],
                    1,
                    probs,
                    m_model.m_pool.get(),
                    m_model.m_isa);
    SoftmaxInPlace(probs, c.numLocalExperts);
}

void
LayerStepper::RunExperts(const std::vector<RoutingDecision>& decisions)
{
    if (!m_attended)
    {
        throw std::logic_error("LayerStepper::RunExperts needs Attend() first");
    }
    if (int(decisions.size()) != m_n)
    {
        throw std::invalid_argument(
            "RunExperts needs one decision per token: " + std::to_string(decisions.size()) +
            " for " + std::to_string(m_n) + " tokens");
    }
    const ModelConfig& c = m_model.m_config;
    const MixtralModel::Layer& layer = *m_model.m_layers[m_layer];
    const int experts = c.numLocalExperts;

    // Which tokens each expert serves, and with what weight.
    std::vector<std::vector<int>> tokensOf(experts);
    std::vector<std::vector<float>> weightsOf(experts);
    for (int i = 0; i < m_n; ++i)
    {
        ValidateDecision(decisions[i], experts, m_layer);
        for (std::size_t k = 0; k < decisions[i].experts.size(); ++k)
        {
            tokensOf[decisions[i].experts[k]].push_back(i);
            weightsOf[decisions[i].experts[k]].push_back(decisions[i].weights[k]);
        }
    }

    // Prefill groups the tokens of each expert into one small matrix product, so each
    // expert's weights are read once per layer whatever the batch.
    std::vector<float> in;
    std::vector<float> out;
    for (int e = 0; e < experts; ++e)
    {
        if (!tokensOf[e].empty())
        {
            RunExpert(layer.experts[e], tokensOf[e], weightsOf[e], in, out);
        }
    }
    m_attended = false;
    if (++m_layer == c.numHiddenLayers)
    {
        m_cache.m_length += m_n; // every layer has written its keys and values
    }
}

void
LayerStepper::RunExpert(const ExpertWeights& expert,
                        const std::vector<int>& rows,
                        const std::vector<float>& weights,
                        std::vector<float>& in,
                        std::vector<float>& out)
{
    const int d = m_model.m_config.hiddenSize;
    const int m = int(rows.size());
    in.resize(std::size_t(m) * d);
    out.resize(std::size_t(m) * d);
    for (int r = 0; r < m; ++r)
    {
        std::memcpy(&in[std::size_t(r) * d],
                    &m_normed[std::size_t(rows[r]) * d],
                    sizeof(float) * d);
    }
    if (m == 1)
    {
        ExpertForward(expert, in.data(), out.data(), m_model.m_pool.get(), m_model.m_isa);
    }
    else
    {
        ExpertForwardBatch(expert, in.data(), m, out.data(), m_model.m_pool.get(), m_model.m_isa);
    }
    for (int r = 0; r < m; ++r)
    {
        float* dst = &m_x[std::size_t(rows[r]) * d];
        const float* src = &out[std::size_t(r) * d];
        const float w = weights[r];
        for (int t = 0; t < d; ++t)
        {
            dst[t] += w * src[t];
        }
    }
}

void
LayerStepper::Logits(float* logits)
{
    if (!Done())
    {
        throw std::logic_error("LayerStepper::Logits before the last layer has run");
    }
    const ModelConfig& c = m_model.m_config;
    const int d = c.hiddenSize;
    for (int i = 0; i < m_n; ++i)
    {
        RmsNorm(&m_x[std::size_t(i) * d],
                m_model.m_norm,
                d,
                c.rmsNormEps,
                &m_normed[std::size_t(i) * d]);
    }
    m_model.m_lmHead.Apply(m_normed.data(), m_n, logits, m_model.m_pool.get(), m_model.m_isa);
}

void
MixtralModel::Attention(int layerIndex, KvCache& cache, int n, const float* normed, float* out)
{
    const ModelConfig& c = m_config;
    const Layer& layer = *m_layers[layerIndex];
    const int hd = c.headDim;
    const int heads = c.numAttentionHeads;
    const int kvHeads = c.numKeyValueHeads;
    const int qWidth = heads * hd;
    const int kvWidth = kvHeads * hd;
    const int groupSize = heads / kvHeads;
    const int position0 = cache.Length();

    std::vector<float> q(std::size_t(n) * qWidth);
    float* keys = cache.m_keys[layerIndex].data();
    float* values = cache.m_values[layerIndex].data();
    ThreadPool* pool = m_pool.get();
    layer.wq.Apply(normed, n, q.data(), pool, m_isa);
    // Keys and values go straight into the cache rows of their positions.
    layer.wk.Apply(normed, n, keys + std::size_t(position0) * kvWidth, pool, m_isa);
    layer.wv.Apply(normed, n, values + std::size_t(position0) * kvWidth, pool, m_isa);
    for (int i = 0; i < n; ++i)
    {
        const int position = position0 + i;
        for (int h = 0; h < heads; ++h)
        {
            ApplyRope(&q[std::size_t(i) * qWidth + h * hd], hd, position, m_invFreq);
        }
        for (int h = 0; h < kvHeads; ++h)
        {
            ApplyRope(keys + std::size_t(position) * kvWidth + h * hd, hd, position, m_invFreq);
        }
    }

    const float scale = float(1.0 / std::sqrt(double(hd)));
    std::vector<float> context(std::size_t(n) * qWidth, 0.0f);
    std::vector<float> scores(position0 + n);
    for (int i = 0; i < n; ++i)
    {
        const int visible = position0 + i + 1; // causal: itself and everything before
        for (int h = 0; h < heads; ++h)
        {
            const float* qh = &q[std::size_t(i) * qWidth + h * hd];
            const int kvh = h / groupSize; // grouped-query attention: heads share kv heads
            for (int j = 0; j < visible; ++j)
            {
                const float* kj = keys + std::size_t(j) * kvWidth + kvh * hd;
                float dot = 0.0f;
                for (int t = 0; t < hd; ++t)
                {
                    dot += qh[t] * kj[t];
                }
                scores[j] = dot * scale;
            }
            SoftmaxInPlace(scores.data(), visible);
            float* ctx = &context[std::size_t(i) * qWidth + h * hd];
            for (int j = 0; j < visible; ++j)
            {
                const float* vj = values + std::size_t(j) * kvWidth + kvh * hd;
                for (int t = 0; t < hd; ++t)
                {
                    ctx[t] += scores[j] * vj[t];
                }
            }
        }
    }
    layer.wo.Apply(context.data(), n, out, pool, m_isa);
}

} // namespace llm
} // namespace wdmoe
