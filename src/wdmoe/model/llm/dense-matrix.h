// One of the model's dense weight matrices (attention projections, router, LM head, embedding
// table), held either in its stored type and multiplied by the expert kernels' MatrixForward
// on every thread of the pool (the default), or widened to float32 and multiplied by Eigen on
// the calling thread (the engine's original path, kept to compare against: it reads twice the
// bytes of a bf16 checkpoint on one thread).
#ifndef WDMOE_LLM_DENSE_MATRIX_H
#define WDMOE_LLM_DENSE_MATRIX_H

#include "expert-kernel.h"

#include <string>
#include <vector>

namespace wdmoe
{
namespace llm
{

class ThreadPool;

/// How the dense matrices are held and multiplied (LoadOptions::dense).
enum class DenseWeights
{
    Stored,     ///< the model's dtype as stored (bf16/f16 widened in registers), every thread
    WidenedF32, ///< float32 copies (rounded through the model's dtype), Eigen, one thread
};

/// "stored" or "widened", as the command lines and configs spell them.
const char* DenseWeightsName(DenseWeights dense);
/// Parses DenseWeightsName's spellings; false (and *out untouched) for anything else.
bool ParseDenseWeights(const std::string& name, DenseWeights* out);

class DenseMatrix
{
  public:
    DenseMatrix() = default;
    /// A float32 matrix [rows][cols] the object owns.
    static DenseMatrix Widened(std::vector<float> values, int rows, int cols);
    /// A view of a stored matrix, which must outlive the object.
    static DenseMatrix Stored(const MatrixWeights& stored);

    int Rows() const { return m_view.rows; }

    int Cols() const { return m_view.cols; }

    /// The type the multiply reads.
    DType ComputeDType() const { return m_view.dtype; }

    /// out[n][rows] = in[n][cols] W^T (no overlap). pool and isa matter only for a stored
    /// matrix: a widened one runs Eigen on the calling thread.
    void Apply(const float* in, int n, float* out, ThreadPool* pool, KernelIsa isa) const;
    /// Row r as float32 into out[cols] (an embedding lookup).
    void Row(int r, float* out) const;

  private:
    /// The matrix as the kernels see it; for a widened one, its own values (so that copies
    /// of a widened matrix point at their own copy).
    MatrixWeights View() const;

    MatrixWeights m_view;
    std::vector<float> m_widened; ///< the values of a widened matrix; empty for a stored one
};

} // namespace llm
} // namespace wdmoe

#endif
