// Text <-> token ids: byte-level for the embedded model, SentencePiece for real checkpoints.
#ifndef WDMOE_LLM_TOKENIZER_H
#define WDMOE_LLM_TOKENIZER_H

#include <memory>
#include <string>
#include <vector>

namespace wdmoe
{
namespace llm
{

struct ModelConfig;

class Tokenizer
{
  public:
    virtual ~Tokenizer() = default;
    virtual std::vector<int> Encode(const std::string& text) const = 0;
    virtual std::string Decode(const std::vector<int>& ids) const = 0;
    virtual int VocabSize() const = 0;
    /// "byte" or "sentencepiece"
    virtual std::string Kind() const = 0;

    /// The tokenizer a model folder calls for: tokenizer.model (SentencePiece) when present,
    /// else byte-level when the vocabulary has 256 entries. Anything else is a LoadError.
    static std::unique_ptr<Tokenizer> ForModel(const std::string& modelDir,
                                               const ModelConfig& config);
};

/// Token id = byte value (0..255); decoding joins the bytes back.
class ByteTokenizer : public Tokenizer
{
  public:
    std::vector<int> Encode(const std::string& text) const override;
    std::string Decode(const std::vector<int>& ids) const override;

    int VocabSize() const override { return 256; }

    std::string Kind() const override { return "byte"; }
};

/// Debian's libsentencepiece, as Mixtral and Llama checkpoints ship it (tokenizer.model).
class SentencePieceTokenizer : public Tokenizer
{
  public:
    /// Throws LoadError naming the file when it cannot be loaded.
    explicit SentencePieceTokenizer(const std::string& modelPath);
    ~SentencePieceTokenizer() override;
    std::vector<int> Encode(const std::string& text) const override;
    std::string Decode(const std::vector<int>& ids) const override;
    int VocabSize() const override;

    std::string Kind() const override { return "sentencepiece"; }

  private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

} // namespace llm
} // namespace wdmoe

#endif
