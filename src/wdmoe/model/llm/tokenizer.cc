#include "tokenizer.h"

#include "model-config.h"
#include "safetensors.h"

#include <sentencepiece_processor.h>
#include <sys/stat.h>

namespace wdmoe
{
namespace llm
{

namespace
{

bool
FileExists(const std::string& path)
{
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

} // namespace

std::unique_ptr<Tokenizer>
Tokenizer::ForModel(const std::string& modelDir, const ModelConfig& config)
{
    const std::string spm = modelDir + "/tokenizer.model";
    if (FileExists(spm))
    {
        auto tokenizer = std::make_unique<SentencePieceTokenizer>(spm);
        if (tokenizer->VocabSize() > config.vocabSize)
        {
            throw LoadError(spm,
                            "tokenizer has " + std::to_string(tokenizer->VocabSize()) +
                                " pieces but config.json says vocab_size " +
                                std::to_string(config.vocabSize));
        }
        return tokenizer;
    }
    if (config.vocabSize == 256)
    {
        return std::make_unique<ByteTokenizer>();
    }
    throw LoadError(modelDir,
                    "no tokenizer.model, and vocab_size " + std::to_string(config.vocabSize) +
                        " is not byte-level (256): cannot tokenize text");
}

std::vector<int>
ByteTokenizer::Encode(const std::string& text) const
{
    std::vector<int> ids;
    ids.reserve(text.size());
    for (unsigned char ch : text)
    {
        ids.push_back(ch);
    }
    return ids;
}

std::string
ByteTokenizer::Decode(const std::vector<int>& ids) const
{
    std::string text;
    text.reserve(ids.size());
    for (int id : ids)
    {
        if (id >= 0 && id < 256)
        {
            text.push_back(char(id));
        }
    }
    return text;
}

struct SentencePieceTokenizer::Impl
{
    sentencepiece::SentencePieceProcessor processor;
};

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& modelPath)
    : m_impl(std::make_unique<Impl>())
{
    const auto status = m_impl->processor.Load(modelPath);
    if (!status.ok())
    {
        throw LoadError(modelPath, "not a SentencePiece model: " + status.ToString());
    }
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::vector<int>
SentencePieceTokenizer::Encode(const std::string& text) const
{
    std::vector<int> ids;
    const auto status = m_impl->processor.Encode(text, &ids);
    if (!status.ok())
    {
        throw std::runtime_error("SentencePiece encode failed: " + status.ToString());
    }
    return ids;
}

std::string
SentencePieceTokenizer::Decode(const std::vector<int>& ids) const
{
    std::string text;
    const auto status = m_impl->processor.Decode(ids, &text);
    if (!status.ok())
    {
        throw std::runtime_error("SentencePiece decode failed: " + status.ToString());
    }
    return text;
}

int
SentencePieceTokenizer::VocabSize() const
{
    return m_impl->processor.GetPieceSize();
}

} // namespace llm
} // namespace wdmoe
