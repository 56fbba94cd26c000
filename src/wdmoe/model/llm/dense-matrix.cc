#include "dense-matrix.h"

#include <Eigen/Core>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <string>

namespace wdmoe
{
namespace llm
{

const char*
DenseWeightsName(DenseWeights dense)
{
    return dense == DenseWeights::Stored ? "stored" : "widened";
}

bool
ParseDenseWeights(const std::string& name, DenseWeights* out)
{
    for (DenseWeights d : {DenseWeights::Stored, DenseWeights::WidenedF32})
    {
        if (name == DenseWeightsName(d))
        {
            *out = d;
            return true;
        }
    }
    return false;
}

DenseMatrix
DenseMatrix::Widened(std::vector<float> values, int rows, int cols)
{
    if (values.size() != std::size_t(rows) * std::size_t(cols))
    {
        throw std::invalid_argument("DenseMatrix::Widened: " + std::to_string(values.size()) +
                                    " values for a " + std::to_string(rows) + " x " +
                                    std::to_string(cols) + " matrix");
    }
    DenseMatrix m;
    m.m_widened = std::move(values);
    m.m_view.dtype = DType::F32;
    m.m_view.rows = rows;
    m.m_view.cols = cols;
    return m;
}

DenseMatrix
DenseMatrix::Stored(const MatrixWeights& stored)
{
    DenseMatrix m;
    m.m_view = stored;
    return m;
}

MatrixWeights
DenseMatrix::View() const
{
    MatrixWeights view = m_view;
    if (!m_widened.empty())
    {
        view.data = m_widened.data();
    }
    return view;
}

void
DenseMatrix::Apply(const float* in, int n, float* out, ThreadPool* pool, KernelIsa isa) const
{
    if (m_widened.empty())
    {
        MatrixForward(m_view, in, n, out, pool, isa);
        return;
    }
    // W is stored [rows][cols] as Hugging Face's Linear, so out = in * W^T.
    using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    Eigen::Map<const RowMatrix> weight(m_widened.data(), m_view.rows, m_view.cols);
    Eigen::Map<const RowMatrix> x(in, n, m_view.cols);
    Eigen::Map<RowMatrix> y(out, n, m_view.rows);
    y.noalias() = x * weight.transpose();
}

void
DenseMatrix::Row(int r, float* out) const
{
    const MatrixWeights view = View();
    const std::size_t stride = view.rowStride != 0 ? view.rowStride : std::size_t(view.cols);
    const auto* base = static_cast<const unsigned char*>(view.data);
    ToF32(view.dtype,
          base + std::size_t(r) * stride * DTypeSize(view.dtype),
          out,
          std::size_t(m_view.cols));
}

} // namespace llm
} // namespace wdmoe
