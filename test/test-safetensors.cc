// Safetensors files, model folders (single file and sharded) and config.json: good inputs
// load exactly, and every kind of bad input is a LoadError naming the file and the problem.
#include "model-config.h"
#include "safetensors-writer.h"
#include "safetensors.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

using namespace wdmoe::llm;
using wdmoe::test::EncodeValues;
using wdmoe::test::MakeTensor;
using wdmoe::test::TempDir;
using wdmoe::test::TestTensor;
using wdmoe::test::WriteFile;
using wdmoe::test::WriteRawSafetensors;
using wdmoe::test::WriteSafetensors;

namespace
{

/// Runs f and requires a LoadError whose File() is file and whose message names the file
/// and contains phrase.
void
RequireLoadError(const std::function<void()>& f, const std::string& file, const std::string& phrase)
{
    try
    {
        f();
    }
    catch (const LoadError& e)
    {
        INFO("message: " << e.what());
        CHECK(e.File() == file);
        CHECK_THAT(e.what(), Catch::Contains(file) && Catch::Contains(phrase));
        return;
    }
    FAIL("no LoadError thrown; expected one containing: " << phrase);
}

/// Opens a safetensors file whose header is the given JSON and whose data section has
/// dataSize zero bytes, and requires a LoadError with phrase.
void
RequireBadHeader(const std::string& header, std::size_t dataSize, const std::string& phrase)
{
    TempDir dir;
    const std::string path = dir.File("bad.safetensors");
    WriteRawSafetensors(path, header, std::vector<std::uint8_t>(dataSize, 0));
    INFO("header: " << header);
    RequireLoadError([&] { SafetensorsFile::Open(path); }, path, phrase);
}

std::string
ReadAll(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::vector<float>
Iota(std::size_t n, float start)
{
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i)
    {
        v[i] = start + static_cast<float>(i) * 0.5f;
    }
    return v;
}

} // namespace

TEST_CASE("safetensors: a good file in each dtype loads zero-copy with shape and bytes",
          "[safetensors]")
{
    TempDir dir;
    const std::string path = dir.File("model.safetensors");
    const std::vector<TestTensor> tensors = {
        MakeTensor("a.f32", DType::F32, {2, 3}, Iota(6, 1.0f)),
        MakeTensor("b.bf16", DType::BF16, {3, 1, 2}, Iota(6, -2.0f)),
        MakeTensor("c.f16", DType::F16, {5}, Iota(5, 0.25f)),
        MakeTensor("scalar", DType::F32, {}, {7.0f}),
        MakeTensor("empty", DType::F16, {0, 4}, {}),
    };
    WriteSafetensors(path, tensors);
    const auto file = SafetensorsFile::Open(path);
    CHECK(file->Path() == path);
    REQUIRE(file->Tensors().size() == tensors.size());
    CHECK(file->Metadata().empty());
    CHECK(file->Find("missing") == nullptr);

    const std::string raw = ReadAll(path);
    for (const TestTensor& t : tensors)
    {
        INFO(t.name);
        const TensorView* v = file->Find(t.name);
        REQUIRE(v != nullptr);
        CHECK(v->name == t.name);
        CHECK(v->file == path);
        CHECK(std::string(DTypeName(v->dtype)) == t.dtype);
        CHECK(v->shape == t.shape);
        CHECK(v->nbytes == t.bytes.size());
        REQUIRE(v->data != nullptr);
        if (!t.bytes.empty())
        {
            CHECK(std::memcmp(v->data, t.bytes.data(), t.bytes.size()) == 0);
        }
        // Zero copy: the view points into the mapping, at the file's own byte offset.
        const auto* base = file->Find(tensors[0].name)->data;
        CHECK(v->data >= base);
        CHECK(v->data + v->nbytes <= base + raw.size());
    }
    CHECK(file->Find("a.f32")->Numel() == 6);
    CHECK(file->Find("scalar")->Numel() == 1);
    CHECK(file->Find("empty")->Numel() == 0);
    CHECK(file->Find("b.bf16")->ShapeString() == "[3, 1, 2]");
    CHECK(file->Find("scalar")->ShapeString() == "[]");

    // The values come back through ToF32 (all exactly representable in each type).
    const TensorView* b = file->Find("b.bf16");
    std::vector<float> back(6);
    ToF32(b->dtype, b->data, back.data(), back.size());
    CHECK(back == Iota(6, -2.0f));
    const TensorView* c = file->Find("c.f16");
    std::vector<float> backC(5);
    ToF32(c->dtype, c->data, backC.data(), backC.size());
    CHECK(backC == Iota(5, 0.25f));
}

TEST_CASE("safetensors: __metadata__ is read as string pairs", "[safetensors]")
{
    TempDir dir;
    const std::string path = dir.File("m.safetensors");
    WriteSafetensors(path,
                     {MakeTensor("w", DType::F32, {1}, {1.0f})},
                     {{"format", "pt"}, {"note", "tiny"}});
    const auto file = SafetensorsFile::Open(path);
    REQUIRE(file->Metadata().size() == 2);
    CHECK(file->Metadata().at("format") == "pt");
    CHECK(file->Metadata().at("note") == "tiny");
    CHECK(file->Tensors().count("__metadata__") == 0);
    CHECK(file->Tensors().size() == 1);
}

TEST_CASE("safetensors: unpadded header and extra keys are accepted", "[safetensors]")
{
    TempDir dir;
    const std::string path = dir.File("x.safetensors");
    WriteRawSafetensors(path,
                        R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}})",
                        EncodeValues(DType::F32, {1.0f, 2.0f}));
    const auto file = SafetensorsFile::Open(path);
    REQUIRE(file->Find("t") != nullptr);
    float v[2];
    ToF32(DType::F32, file->Find("t")->data, v, 2);
    CHECK(v[0] == 1.0f);
    CHECK(v[1] == 2.0f);
}

TEST_CASE("safetensors: the reference layout rules (contiguous data, the last tensor ends the "
          "file, headers up to 100 MB)",
          "[safetensors][errors][bad-input]")
{
    // huggingface/safetensors refuses all of these (InvalidOffset, MetadataIncompleteBuffer,
    // HeaderTooLarge); a reader that accepts them reads files no other tool would write.
    const std::string two = R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                               "b": {"dtype": "F32", "shape": [1], "data_offsets": [%s]}})";
    auto header = [&](const std::string& offsets) {
        std::string h = two;
        return h.replace(h.find("%s"), 2, offsets);
    };
    RequireBadHeader(header("4, 8"),
                     9,
                     "has 1 byte after the last tensor's end at byte 8 (the "
                     "last tensor must end the file)");
    RequireBadHeader(header("8, 12"), 12, "a gap of 4 bytes at byte 4, before tensor \"b\"");
    RequireBadHeader(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                     8,
                     "a gap of 4 bytes at byte 0");
    RequireBadHeader(R"({"__metadata__": {"format": "pt"}})", 3, "has 3 bytes after");
    TempDir dir;
    const std::string path = dir.File("big.safetensors");
    // A header of 100,000,001 bytes (spaces after the JSON object are allowed whitespace).
    WriteRawSafetensors(path, "{}" + std::string(100000001 - 2, ' '), {});
    RequireLoadError([&] { SafetensorsFile::Open(path); },
                     path,
                     "header length 100000001 is more than the 100000000 bytes");
    WriteRawSafetensors(path, "{}" + std::string(100000000 - 2, ' '), {});
    CHECK(SafetensorsFile::Open(path)->Tensors().empty());
}

TEST_CASE("safetensors: tensors of dtypes the engine does not read are skipped with a note",
          "[safetensors][weights][bad-input]")
{
    TempDir dir;
    std::vector<std::uint8_t> data = EncodeValues(DType::F32, {1.0f});
    data.resize(4 + 8 + 1, 0); // I64 [1], then BOOL [1]
    WriteRawSafetensors(dir.File("model.safetensors"),
                        R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                            "step": {"dtype": "I64", "shape": [1], "data_offsets": [4, 12]},
                            "mask": {"dtype": "BOOL", "shape": [1], "data_offsets": [12, 13]}})",
                        data);
    const auto file = SafetensorsFile::Open(dir.File("model.safetensors"));
    CHECK(file->Tensors().size() == 1);
    CHECK(file->Skipped() == std::map<std::string, std::string>{{"step", "I64"}, {"mask", "BOOL"}});
    const WeightStore store = WeightStore::Open(dir.Path());
    CHECK(store.Names() == std::vector<std::string>{"w"});
    REQUIRE(store.Notes().size() == 2);
    CHECK_THAT(store.Notes()[1],
               Catch::Contains("model.safetensors: tensor \"step\" (I64) skipped: the engine "
                               "reads F32, BF16 and F16 tensors only"));
    // Asked for, it is an error naming the file and its dtype; still checked like the others.
    RequireLoadError([&] { store.Get("step", {1}); },
                     dir.File("model.safetensors"),
                     "tensor \"step\" has a dtype the engine does not read");
    RequireBadHeader(R"({"step": {"dtype": "I64", "shape": [2], "data_offsets": [0, 8]}})",
                     8,
                     "needs 16 bytes (size mismatch)");
}

TEST_CASE("safetensors: file-level errors name the file", "[safetensors][errors]")
{
    TempDir dir;

    SECTION("missing file")
    {
        const std::string path = dir.File("nope.safetensors");
        RequireLoadError([&] { SafetensorsFile::Open(path); }, path, "cannot open");
    }
    SECTION("a folder is not a file")
    {
        RequireLoadError([&] { SafetensorsFile::Open(dir.Path()); },
                         dir.Path(),
                         "not a regular file");
    }
    SECTION("smaller than 8 bytes")
    {
        const std::string path = dir.File("tiny.safetensors");
        for (std::size_t n : {0u, 1u, 7u})
        {
            WriteFile(path, std::string(n, '\0'));
            RequireLoadError([&] { SafetensorsFile::Open(path); }, path, "too small");
        }
    }
    SECTION("header length past the end of the file")
    {
        const std::string path = dir.File("long.safetensors");
        WriteRawSafetensors(path, "{}", {}, 3);
        RequireLoadError([&] { SafetensorsFile::Open(path); },
                         path,
                         "runs past the end of the file");
        // A length so large that 8 + N would wrap around.
        WriteRawSafetensors(path, "{}", {}, UINT64_MAX - 2);
        RequireLoadError([&] { SafetensorsFile::Open(path); },
                         path,
                         "runs past the end of the file");
    }
    SECTION("every truncation of a good file fails cleanly")
    {
        const std::string good = dir.File("good.safetensors");
        WriteSafetensors(good,
                         {MakeTensor("a", DType::F32, {2, 2}, Iota(4, 0.0f)),
                          MakeTensor("b", DType::BF16, {3}, Iota(3, 1.0f))});
        const std::string raw = ReadAll(good);
        const std::string path = dir.File("cut.safetensors");
        for (std::size_t n = 0; n < raw.size(); ++n)
        {
            INFO("truncated to " << n << " bytes");
            WriteFile(path, raw.substr(0, n));
            CHECK_THROWS_AS(SafetensorsFile::Open(path), LoadError);
        }
    }
}

TEST_CASE("safetensors: header errors", "[safetensors][errors]")
{
    SECTION("invalid JSON")
    {
        RequireBadHeader(R"({"a": {"dtype": "F32",)", 0, "not valid JSON");
        RequireBadHeader("", 0, "not valid JSON");
        RequireBadHeader(std::string("{\"a\xff\": 1}"), 0, "not valid JSON"); // bad UTF-8
    }
    SECTION("header not an object")
    {
        RequireBadHeader("[1, 2]", 0, "header must be a JSON object");
        RequireBadHeader("42", 0, "header must be a JSON object");
    }
    SECTION("entry not an object")
    {
        RequireBadHeader(R"({"w": [1, 2]})", 0, "entry must be a JSON object");
        RequireBadHeader(R"({"w": "F32"})", 0, "entry must be a JSON object");
    }
    SECTION("unsupported or missing dtype")
    {
        RequireBadHeader(R"({"w": {"dtype": "F8", "shape": [1], "data_offsets": [0, 1]}})",
                         1,
                         "unsupported dtype \"F8\" (safetensors dtypes: BOOL");
        RequireBadHeader(R"({"w": {"dtype": "f32", "shape": [1], "data_offsets": [0, 4]}})",
                         4,
                         "unsupported dtype");
        RequireBadHeader(R"({"w": {"shape": [1], "data_offsets": [0, 4]}})",
                         4,
                         "\"dtype\" must be a string");
        RequireBadHeader(R"({"w": {"dtype": 32, "shape": [1], "data_offsets": [0, 4]}})",
                         4,
                         "\"dtype\" must be a string");
    }
    SECTION("bad shapes")
    {
        const std::string phrase = "\"shape\" must be an array of non-negative integers";
        RequireBadHeader(R"({"w": {"dtype": "F32", "shape": [-1, 2], "data_offsets": [0, 0]}})",
                         0,
                         phrase);
        RequireBadHeader(R"({"w": {"dtype": "F32", "shape": [2.5], "data_offsets": [0, 8]}})",
                         8,
                         phrase);
        RequireBadHeader(R"({"w": {"dtype": "F32", "shape": ["2"], "data_offsets": [0, 8]}})",
                         8,
                         phrase);
        RequireBadHeader(R"({"w": {"dtype": "F32", "shape": 2, "data_offsets": [0, 8]}})",
                         8,
                         phrase);
        RequireBadHeader(R"({"w": {"dtype": "F32", "data_offsets": [0, 8]}})", 8, phrase);
        // Larger than int64.
        RequireBadHeader(
            R"({"w": {"dtype": "F32", "shape": [18446744073709551615], "data_offsets": [0, 8]}})",
            8,
            phrase);
    }
    SECTION("numel overflow")
    {
        // 2^32 * 2^32 overflows int64; 2^61 * 4 bytes overflows uint64 bytes.
        RequireBadHeader(
            R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]}})",
            0,
            "numel overflow");
        RequireBadHeader(
            R"({"w": {"dtype": "F32", "shape": [4611686018427387904, 2], "data_offsets": [0, 0]}})",
            0,
            "numel overflow");
        RequireBadHeader(
            R"({"w": {"dtype": "F32", "shape": [4611686018427387904], "data_offsets": [0, 0]}})",
            0,
            "numel overflow");
    }
    SECTION("offsets not two non-negative integers")
    {
        const std::string phrase = "\"data_offsets\" must be two non-negative integers";
        for (const char* off : {"[0]",
                                "[0, 4, 8]",
                                "[-1, 4]",
                                "[0, \"4\"]",
                                "[0.0, 4]",
                                "{\"b\": 0}",
                                "null",
                                "[]",
                                "[0, -4]"})
        {
            RequireBadHeader(
                std::string(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": )") + off +
                    "}}",
                4,
                phrase);
        }
        RequireBadHeader(R"({"w": {"dtype": "F32", "shape": [1]}})", 4, phrase);
    }
    SECTION("begin > end")
    {
        RequireBadHeader(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}})",
                         8,
                         "begin 8 is greater than end 4");
    }
    SECTION("end past the data section")
    {
        RequireBadHeader(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})",
                         7,
                         "past the end of the data section (7 bytes)");
        RequireBadHeader(
            R"({"w": {"dtype": "F32", "shape": [0], "data_offsets": [18446744073709551615, 18446744073709551615]}})",
            0,
            "must be two non-negative integers"); // beyond int64 is not an offset
        RequireBadHeader(
            R"({"w": {"dtype": "F32", "shape": [0], "data_offsets": [9000000000000000000, 9000000000000000000]}})",
            0,
            "past the end of the data section");
    }
    SECTION("size != numel * dtype size")
    {
        RequireBadHeader(R"({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}})",
                         16,
                         "size mismatch");
        RequireBadHeader(R"({"w": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 12]}})",
                         16,
                         "needs 6 bytes");
    }
    SECTION("overlapping tensors")
    {
        RequireBadHeader(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                             "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                         12,
                         "overlap");
        // Listed out of order, and one inside another.
        RequireBadHeader(R"({"z": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]},
                             "y": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})",
                         16,
                         "overlap");
    }
    SECTION("bad __metadata__")
    {
        RequireBadHeader(R"({"__metadata__": ["pt"]})", 0, "\"__metadata__\" must be an object");
        RequireBadHeader(R"({"__metadata__": {"n": 3}})", 0, "must be a string");
    }
    SECTION("the same key twice")
    {
        RequireBadHeader(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                             "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                         8,
                         "key \"a\" appears twice");
    }
}

TEST_CASE("safetensors: adjacent and empty tensors at boundaries tile the data", "[safetensors]")
{
    TempDir dir;
    const std::string path = dir.File("ok.safetensors");
    WriteRawSafetensors(path,
                        R"({"b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]},
                            "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                            "e": {"dtype": "F16", "shape": [0], "data_offsets": [4, 4]}})",
                        EncodeValues(DType::F32, {1.0f, 2.0f}));
    const auto file = SafetensorsFile::Open(path);
    CHECK(file->Tensors().size() == 3);
    float b = 0;
    ToF32(DType::F32, file->Find("b")->data, &b, 1);
    CHECK(b == 2.0f);
    // An empty tensor inside another one's bytes breaks the tiling (the reference refuses it).
    RequireBadHeader(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                         "e": {"dtype": "F16", "shape": [0], "data_offsets": [2, 2]}})",
                     4,
                     "overlap");
}

TEST_CASE("safetensors: mutated headers never crash", "[safetensors][errors]")
{
    // Byte flips in the header must give either a valid file or a LoadError; ASan/UBSan
    // builds check that nothing reads out of bounds on the way.
    TempDir dir;
    const std::string good = dir.File("good.safetensors");
    WriteSafetensors(good,
                     {MakeTensor("layer.0.w", DType::F16, {4, 2}, Iota(8, 0.0f)),
                      MakeTensor("layer.1.w", DType::F32, {3}, Iota(3, 1.0f))},
                     {{"format", "pt"}});
    const std::string raw = ReadAll(good);
    const std::string path = dir.File("mut.safetensors");
    std::mt19937 rng(12345);
    const char alphabet[] = "{}[]\",:0123456789-.eE FBI\xff";
    int loaded = 0;
    int failed = 0;
    for (int trial = 0; trial < 2000; ++trial)
    {
        std::string m = raw;
        const int flips = 1 + static_cast<int>(rng() % 3);
        for (int k = 0; k < flips; ++k)
        {
            // Mostly inside the header (8 .. 8 + header), sometimes the length itself.
            const std::size_t pos = rng() % 10 == 0 ? rng() % 8 : 8 + rng() % (raw.size() - 8);
            m[pos] = alphabet[rng() % (sizeof alphabet - 1)];
        }
        WriteFile(path, m);
        try
        {
            const auto f = SafetensorsFile::Open(path);
            for (const auto& kv : f->Tensors())
            {
                // Touch every byte the view claims.
                volatile std::uint8_t sum = 0;
                for (std::size_t i = 0; i < kv.second.nbytes; ++i)
                {
                    sum = static_cast<std::uint8_t>(sum + kv.second.data[i]);
                }
            }
            ++loaded;
        }
        catch (const LoadError& e)
        {
            ++failed;
            REQUIRE_THAT(e.what(), Catch::Contains(path));
        }
    }
    // Both outcomes occur, so both paths (validation errors and reading accepted views) ran.
    INFO("loaded " << loaded << ", failed " << failed);
    CHECK(failed > 0);
    CHECK(loaded > 0);
    CHECK(loaded + failed == 2000);
}

TEST_CASE("weight store: a single-file folder", "[weights]")
{
    TempDir dir;
    WriteSafetensors(dir.File("model.safetensors"),
                     {MakeTensor("w.b", DType::F32, {2, 3}, Iota(6, 0.0f)),
                      MakeTensor("w.a", DType::BF16, {4}, Iota(4, 1.0f))});
    // A copy made by returning by value must keep the views valid.
    const WeightStore ws = WeightStore::Open(dir.Path());
    CHECK(ws.Dir() == dir.Path());
    CHECK(ws.Names() == std::vector<std::string>{"w.a", "w.b"});
    CHECK(ws.Has("w.a"));
    CHECK_FALSE(ws.Has("w.c"));
    const TensorView& b = ws.Get("w.b", {2, 3});
    std::vector<float> v(6);
    ToF32(b.dtype, b.data, v.data(), v.size());
    CHECK(v == Iota(6, 0.0f));

    const WeightStore copy = ws;
    CHECK(copy.Get("w.a", {4}).data == ws.Get("w.a", {4}).data);
}

TEST_CASE("weight store: shape mismatch and missing tensor messages", "[weights][errors]")
{
    TempDir dir;
    const std::string file = dir.File("model.safetensors");
    WriteSafetensors(file, {MakeTensor("proj", DType::F32, {2, 3}, Iota(6, 0.0f))});
    const WeightStore ws = WeightStore::Open(dir.Path());
    try
    {
        ws.Get("proj", {3, 2});
        FAIL("no LoadError for a shape mismatch");
    }
    catch (const LoadError& e)
    {
        const std::string msg = e.what();
        INFO(msg);
        CHECK(e.File() == file);
        CHECK_THAT(msg, Catch::Contains("\"proj\""));
        CHECK_THAT(msg, Catch::Contains("has shape [2, 3]"));
        CHECK_THAT(msg, Catch::Contains("expected [3, 2]"));
    }
    RequireLoadError([&] { ws.Get("proj", {6}); }, file, "expected [6]");
    RequireLoadError([&] { ws.Get("proj", {2, 3, 1}); }, file, "expected [2, 3, 1]");
    RequireLoadError([&] { ws.Get("absent.weight", {4}); },
                     dir.Path(),
                     "tensor \"absent.weight\" not found (expected shape [4])");
}

TEST_CASE("weight store: folder errors name the folder", "[weights][errors]")
{
    TempDir dir;
    RequireLoadError([&] { WeightStore::Open(dir.Path()); },
                     dir.Path(),
                     "no model.safetensors or model.safetensors.index.json");
    const std::string gone = dir.File("does-not-exist");
    RequireLoadError([&] { WeightStore::Open(gone); }, gone, "does not exist");
    // A corrupt single file is reported against the file.
    WriteFile(dir.File("model.safetensors"), "abc");
    RequireLoadError([&] { WeightStore::Open(dir.Path()); },
                     dir.File("model.safetensors"),
                     "too small");
}

namespace
{

/// A two-shard folder: "a" and "b" in shard 1, "c" in shard 2.
void
WriteShards(const TempDir& dir)
{
    WriteSafetensors(
        dir.File("model-00001-of-00002.safetensors"),
        {MakeTensor("a", DType::F16, {2}, {1.0f, 2.0f}), MakeTensor("b", DType::F16, {1}, {3.0f})});
    WriteSafetensors(dir.File("model-00002-of-00002.safetensors"),
                     {MakeTensor("c", DType::F32, {2, 2}, Iota(4, 4.0f))});
}

std::string
IndexJson(const nlohmann::json& weightMap)
{
    return nlohmann::json{{"metadata", {{"total_size", 22}}}, {"weight_map", weightMap}}.dump(2);
}

const nlohmann::json kGoodMap = {{"a", "model-00001-of-00002.safetensors"},
                                 {"b", "model-00001-of-00002.safetensors"},
                                 {"c", "model-00002-of-00002.safetensors"}};

} // namespace

TEST_CASE("weight store: sharded folder through the index", "[weights]")
{
    TempDir dir;
    WriteShards(dir);
    WriteFile(dir.File("model.safetensors.index.json"), IndexJson(kGoodMap));
    // A stray single file must be ignored when the index exists.
    WriteFile(dir.File("model.safetensors"), "garbage");

    const WeightStore ws = WeightStore::Open(dir.Path());
    CHECK(ws.Names() == std::vector<std::string>{"a", "b", "c"});
    const TensorView& a = ws.Get("a", {2});
    CHECK(a.file == dir.File("model-00001-of-00002.safetensors"));
    const TensorView& c = ws.Get("c", {2, 2});
    CHECK(c.file == dir.File("model-00002-of-00002.safetensors"));
    std::vector<float> v(4);
    ToF32(c.dtype, c.data, v.data(), v.size());
    CHECK(v == Iota(4, 4.0f));
    float b = 0;
    ToF32(DType::F16, ws.Get("b", {1}).data, &b, 1);
    CHECK(b == 3.0f);
}

TEST_CASE("weight store: bad index", "[weights][errors]")
{
    TempDir dir;
    WriteShards(dir);
    const std::string index = dir.File("model.safetensors.index.json");

    SECTION("missing shard file")
    {
        nlohmann::json m = kGoodMap;
        m["c"] = "model-00003-of-00002.safetensors";
        WriteFile(index, IndexJson(m));
        RequireLoadError([&] { WeightStore::Open(dir.Path()); },
                         dir.File("model-00003-of-00002.safetensors"),
                         "cannot open");
    }
    SECTION("tensor absent from its shard")
    {
        nlohmann::json m = kGoodMap;
        m["d"] = "model-00002-of-00002.safetensors";
        WriteFile(index, IndexJson(m));
        RequireLoadError([&] { WeightStore::Open(dir.Path()); },
                         dir.File("model-00002-of-00002.safetensors"),
                         "tensor \"d\" is listed in model.safetensors.index.json but is absent");
    }
    SECTION("tensor listed under the wrong shard")
    {
        nlohmann::json m = kGoodMap;
        m["c"] = "model-00001-of-00002.safetensors";
        WriteFile(index, IndexJson(m));
        RequireLoadError([&] { WeightStore::Open(dir.Path()); },
                         dir.File("model-00001-of-00002.safetensors"),
                         "absent from this shard");
    }
    SECTION("same name in two shards")
    {
        WriteSafetensors(dir.File("model-00002-of-00002.safetensors"),
                         {MakeTensor("c", DType::F32, {2, 2}, Iota(4, 4.0f)),
                          MakeTensor("a", DType::F16, {2}, {1.0f, 2.0f})});
        WriteFile(index, IndexJson(kGoodMap));
        RequireLoadError([&] { WeightStore::Open(dir.Path()); },
                         dir.File("model-00002-of-00002.safetensors"),
                         "same name in two shards");
    }
    SECTION("same name twice in weight_map")
    {
        WriteFile(index,
                  R"({"weight_map": {"a": "model-00001-of-00002.safetensors",
                                     "a": "model-00002-of-00002.safetensors"}})");
        RequireLoadError([&] { WeightStore::Open(dir.Path()); }, index, "appears twice");
    }
    SECTION("malformed index")
    {
        WriteFile(index, "{\"weight_map\": ");
        RequireLoadError([&] { WeightStore::Open(dir.Path()); }, index, "not valid JSON");
        WriteFile(index, R"({"metadata": {}})");
        RequireLoadError([&] { WeightStore::Open(dir.Path()); }, index, "\"weight_map\"");
        WriteFile(index, R"({"weight_map": {"a": 1}})");
        RequireLoadError([&] { WeightStore::Open(dir.Path()); }, index, "shard file name");
        WriteFile(index, R"({"weight_map": {"a": "/etc/passwd"}})");
        RequireLoadError([&] { WeightStore::Open(dir.Path()); }, index, "relative");
        WriteFile(index, R"({"weight_map": {}})");
        RequireLoadError([&] { WeightStore::Open(dir.Path()); }, index, "empty");
        WriteFile(index, "[]");
        RequireLoadError([&] { WeightStore::Open(dir.Path()); }, index, "must be a JSON object");
    }
}

// ---------------------------------------------------------------- config.json

namespace
{

/// Mixtral-8x7B's config.json (abridged to the fields HF writes for it).
nlohmann::json
MixtralConfigJson()
{
    return nlohmann::json::parse(R"({
        "architectures": ["MixtralForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "silu",
        "hidden_size": 4096,
        "initializer_range": 0.02,
        "intermediate_size": 14336,
        "max_position_embeddings": 32768,
        "model_type": "mixtral",
        "num_attention_heads": 32,
        "num_experts_per_tok": 2,
        "num_hidden_layers": 32,
        "num_key_value_heads": 8,
        "num_local_experts": 8,
        "output_router_logits": false,
        "rms_norm_eps": 1e-05,
        "rope_theta": 1000000.0,
        "router_aux_loss_coef": 0.02,
        "sliding_window": null,
        "tie_word_embeddings": false,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.36.0.dev0",
        "use_cache": true,
        "vocab_size": 32000
    })");
}

struct ConfigFile
{
    TempDir dir;
    std::string path = dir.File("config.json");

    ModelConfig Load(const nlohmann::json& j)
    {
        WriteFile(path, j.dump(2));
        return ModelConfig::Load(path);
    }

    void RequireError(const nlohmann::json& j, const std::string& phrase)
    {
        WriteFile(path, j.dump(2));
        RequireLoadError([&] { ModelConfig::Load(path); }, path, phrase);
    }
};

} // namespace

TEST_CASE("config: the config.json of Mixtral-8x7B", "[config]")
{
    ConfigFile cf;
    const ModelConfig c = cf.Load(MixtralConfigJson());
    CHECK(c.modelType == "mixtral");
    CHECK(c.vocabSize == 32000);
    CHECK(c.hiddenSize == 4096);
    CHECK(c.intermediateSize == 14336);
    CHECK(c.numHiddenLayers == 32);
    CHECK(c.numAttentionHeads == 32);
    CHECK(c.numKeyValueHeads == 8);
    CHECK(c.headDim == 128); // absent: hidden / heads
    CHECK(c.numLocalExperts == 8);
    CHECK(c.numExpertsPerTok == 2);
    CHECK(c.maxPositionEmbeddings == 32768);
    CHECK(c.rmsNormEps == Approx(1e-5));
    CHECK(c.ropeTheta == Approx(1e6));
    CHECK_FALSE(c.tieWordEmbeddings);
    CHECK(c.torchDtype == "bfloat16");
}

TEST_CASE("config: defaults and head_dim", "[config]")
{
    ConfigFile cf;
    nlohmann::json j = MixtralConfigJson();

    SECTION("head_dim null -> hidden / heads")
    {
        j["hidden_size"] = 256;
        j["num_attention_heads"] = 8;
        j["head_dim"] = nullptr;
        CHECK(cf.Load(j).headDim == 32);
    }
    SECTION("explicit head_dim is kept even when heads * head_dim != hidden")
    {
        j["hidden_size"] = 256;
        j["num_attention_heads"] = 8;
        j["head_dim"] = 64;
        CHECK(cf.Load(j).headDim == 64);
    }
    SECTION("num_key_value_heads absent -> attention heads; optional fields default")
    {
        j.erase("num_key_value_heads");
        j.erase("rms_norm_eps");
        j.erase("rope_theta");
        j.erase("tie_word_embeddings");
        j.erase("torch_dtype");
        j.erase("model_type");
        j["rope_theta"] = nullptr;
        const ModelConfig c = cf.Load(j);
        CHECK(c.numKeyValueHeads == 32);
        CHECK(c.rmsNormEps == Approx(1e-5));
        CHECK(c.ropeTheta == Approx(1e6));
        CHECK_FALSE(c.tieWordEmbeddings);
        CHECK(c.torchDtype.empty());
        CHECK(c.modelType == "mixtral");
    }
    SECTION("tied embeddings")
    {
        j["tie_word_embeddings"] = true;
        CHECK(cf.Load(j).tieWordEmbeddings);
    }
}

TEST_CASE("config: errors name the file and the field", "[config][errors]")
{
    ConfigFile cf;
    nlohmann::json j = MixtralConfigJson();

    SECTION("missing field")
    {
        for (const char* key : {"vocab_size",
                                "hidden_size",
                                "intermediate_size",
                                "num_hidden_layers",
                                "num_attention_heads",
                                "num_local_experts",
                                "num_experts_per_tok",
                                "max_position_embeddings"})
        {
            nlohmann::json m = j;
            m.erase(key);
            cf.RequireError(m, std::string("field \"") + key + "\" is missing");
        }
        j["hidden_size"] = nullptr;
        cf.RequireError(j, "field \"hidden_size\" is missing");
    }
    SECTION("non-positive field")
    {
        j["hidden_size"] = -3;
        cf.RequireError(j, "config.json: field \"hidden_size\" must be a positive integer, got -3");
        j["hidden_size"] = 0;
        cf.RequireError(j, "field \"hidden_size\" must be a positive integer, got 0");
        j = MixtralConfigJson();
        j["num_key_value_heads"] = 0;
        cf.RequireError(j, "field \"num_key_value_heads\" must be a positive integer");
        j = MixtralConfigJson();
        j["head_dim"] = -128;
        cf.RequireError(j, "field \"head_dim\" must be a positive integer");
    }
    SECTION("wrong type")
    {
        j["num_hidden_layers"] = "32";
        cf.RequireError(j, "field \"num_hidden_layers\" must be a positive integer, got \"32\"");
        j["num_hidden_layers"] = 32.5;
        cf.RequireError(j, "field \"num_hidden_layers\" must be a positive integer, got 32.5");
        j["num_hidden_layers"] = true;
        cf.RequireError(j, "field \"num_hidden_layers\" must be a positive integer, got true");
        j["num_hidden_layers"] = nlohmann::json::array({32});
        cf.RequireError(j, "must be a positive integer, got an array");
        j["num_hidden_layers"] = 4294967296LL;
        cf.RequireError(j, "field \"num_hidden_layers\" is too large");
        j = MixtralConfigJson();
        j["tie_word_embeddings"] = "false";
        cf.RequireError(j, "field \"tie_word_embeddings\" must be true or false");
        j = MixtralConfigJson();
        j["torch_dtype"] = 16;
        cf.RequireError(j, "field \"torch_dtype\" must be a string");
    }
    SECTION("heads not divisible by kv heads")
    {
        j["num_key_value_heads"] = 6;
        cf.RequireError(j,
                        "num_attention_heads\" (32) must be divisible by num_key_value_heads (6)");
    }
    SECTION("hidden not divisible by heads without head_dim")
    {
        j["hidden_size"] = 4100;
        cf.RequireError(j, "field \"hidden_size\" (4100) must be divisible by num_attention_heads");
    }
    SECTION("odd head_dim")
    {
        j["head_dim"] = 33;
        cf.RequireError(j, "field \"head_dim\" must be even");
    }
    SECTION("top-k > experts")
    {
        j["num_experts_per_tok"] = 9;
        cf.RequireError(j,
                        "field \"num_experts_per_tok\" (9) must not exceed num_local_experts (8)");
        j["num_experts_per_tok"] = 0;
        cf.RequireError(j, "field \"num_experts_per_tok\" must be a positive integer");
    }
    SECTION("eps and theta must be positive numbers")
    {
        j["rms_norm_eps"] = 0;
        cf.RequireError(j, "field \"rms_norm_eps\" must be a positive number");
        j["rms_norm_eps"] = "1e-5";
        cf.RequireError(j, "field \"rms_norm_eps\" must be a positive number");
        j = MixtralConfigJson();
        j["rope_theta"] = -10000.0;
        cf.RequireError(j, "field \"rope_theta\" must be a positive number");
    }
    SECTION("not JSON, not an object, no file")
    {
        WriteFile(cf.path, "{\"hidden_size\": 4096,");
        RequireLoadError([&] { ModelConfig::Load(cf.path); }, cf.path, "not valid JSON");
        cf.RequireError(nlohmann::json::array({1, 2}), "must be a JSON object");
        const std::string gone = cf.dir.File("missing.json");
        RequireLoadError([&] { ModelConfig::Load(gone); }, gone, "cannot open");
    }
}
