// Tests for text corpora: cleaning and tokenising, vocabularies, the generated tiny corpus written to
// a folder and loaded back at both levels, the loader's errors, and the real Jane Austen corpus
// ("[austen]": prepared by tools/data/prepare_austen.sh, whose R tokeniser must agree with ours).
#include "runtime/data/text_corpus.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

namespace sieve::runtime {
namespace {

namespace fs = std::filesystem;
using Tokens = std::vector<std::string>;

class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = fs::temp_directory_path() /
            ("sieve_text_corpus_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string path() const { return path_.string(); }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

// Sets an environment variable for one scope, then restores the previous value.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

std::vector<int32_t> Ids(const Tensor& tensor) {
  const int32_t* ids = tensor.data<int32_t>();
  return {ids, ids + tensor.numel()};
}

std::vector<std::string> ReadAllLines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

void Rewrite(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  for (const std::string& line : lines) out << line << '\n';
  REQUIRE(out.good());
}

TEST_CASE("CleanLine drops italics underscores and extra whitespace", "[runtime][corpus]") {
  CHECK(CleanLine("  I _certainly_ have\thad   my share.  ") == "I certainly have had my share.");
  CHECK(CleanLine("a _ b") == "a b");
  CHECK(CleanLine(" \t ").empty());
  CHECK(CleanLine("__").empty());
}

TEST_CASE("TokenizeWords lowercases words and splits punctuation off", "[runtime][corpus]") {
  CHECK(TokenizeWords("Mr. Darcy's good-humoured--Yes, her \xC2\xA3"
                      "20,000!") ==
        Tokens{"mr", ".", "darcy's", "good-humoured", "--", "yes", ",", "her", "\xC2\xA3", "20", ",", "000", "!"});
  CHECK(TokenizeWords("\"'Tis CHAPTER 1;--but well-\"") ==
        Tokens{"\"", "'", "tis", "chapter", "1", ";", "--", "but", "well", "-", "\""});
  CHECK(TokenizeWords("a--b -c- &c.") == Tokens{"a", "--", "b", "-", "c", "-", "&", "c", "."});
  CHECK(TokenizeWords("").empty());
}

TEST_CASE("TokenizeChars yields code points, spaces included", "[runtime][corpus]") {
  CHECK(TokenizeChars("Ab \xC2\xA3"
                      "1") == Tokens{"A", "b", " ", "\xC2\xA3", "1"});
  // A lead byte without its continuation is one token, as is a stray continuation byte.
  CHECK(TokenizeChars("\xC2"
                      "a\x80") == Tokens{"\xC2", "a", "\x80"});
  CHECK(Tokenize("Hi.", TokenLevel::kChar) == Tokens{"H", "i", "."});
  CHECK(Tokenize("Hi.", TokenLevel::kWord) == Tokens{"hi", "."});
}

TEST_CASE("Vocabulary::Build ranks by frequency, ties in byte order, and caps with <unk>", "[runtime][corpus]") {
  const std::vector<std::string> lines = {"b a c a", "d b a", "e"};
  const Vocabulary all = Vocabulary::Build(lines, TokenLevel::kWord, 0);
  CHECK(all.tokens() == Tokens{"<unk>", "<eos>", "a", "b", "c", "d", "e"});
  CHECK(all.counts() == std::vector<int64_t>{0, 3, 3, 2, 1, 1, 1});
  const Vocabulary capped = Vocabulary::Build(lines, TokenLevel::kWord, 5);
  CHECK(capped.tokens() == Tokens{"<unk>", "<eos>", "a", "b", "c"});
  CHECK(capped.counts() == std::vector<int64_t>{2, 3, 3, 2, 1});  // d and e became <unk>
  CHECK(capped.Id("b") == 3);
  CHECK(capped.Id("e") == kUnknownId);
  CHECK(capped.Contains("c"));
  CHECK_FALSE(capped.Contains("e"));
  CHECK(Ids(EncodeLines({"e a", "b"}, capped, TokenLevel::kWord)) ==
        std::vector<int32_t>{kUnknownId, 2, kEndOfLineId, 3, kEndOfLineId});

  const Vocabulary chars = Vocabulary::Build({"aab", "b"}, TokenLevel::kChar, 0);
  CHECK(chars.tokens() == Tokens{"<unk>", "<eos>", "a", "b"});
  CHECK(chars.counts() == std::vector<int64_t>{0, 2, 2, 2});
}

TEST_CASE("Vocabulary::Create refuses malformed vocabularies", "[runtime][corpus]") {
  CHECK(Vocabulary::Create({"<unk>", "<eos>", "x"}, {0, 1, 2}).ok());
  auto without_specials = Vocabulary::Create({"x", "<eos>"}, {1, 1});
  REQUIRE_FALSE(without_specials.ok());
  CHECK_THAT(without_specials.status().message(), Catch::Contains("starts with <unk> (id 0) and <eos> (id 1)"));
  auto duplicate = Vocabulary::Create({"<unk>", "<eos>", "x", "y", "x"}, {0, 1, 1, 1, 1});
  REQUIRE_FALSE(duplicate.ok());
  CHECK_THAT(duplicate.status().message(), Catch::Contains("'x' appears twice, as ids 2 and 4"));
  CHECK_FALSE(Vocabulary::Create({"<unk>", "<eos>", ""}, {0, 1, 1}).ok());
  CHECK_FALSE(Vocabulary::Create({"<unk>", "<eos>", "x"}, {0, 1, -1}).ok());
  CHECK_FALSE(Vocabulary::Create({"<unk>", "<eos>"}, {0}).ok());
}

TEST_CASE("The tiny generated corpus is a deterministic function of its seed", "[runtime][corpus]") {
  const CorpusText a = GenerateTinyCorpus(50, 3);
  const CorpusText b = GenerateTinyCorpus(50, 3);
  const CorpusText other = GenerateTinyCorpus(50, 4);
  CHECK(a.lines == b.lines);
  CHECK(a.lines != other.lines);
  CHECK(a.lines[0].size() == 50);
  CHECK(a.lines[1].size() == 5);
  CHECK(a.lines[2].size() == 5);
  int questions = 0;
  for (const auto& split : a.lines) {
    for (const std::string& line : split) {
      CHECK(CleanLine(line) == line);
      const bool question = line.rfind("Does ", 0) == 0;
      CHECK(line.back() == (question ? '?' : '.'));
      questions += question;
    }
  }
  CHECK(questions > 0);
  CHECK(questions < 30);
  // Every word of the grammar appears, and nothing else.
  const Vocabulary words = Vocabulary::Build(GenerateTinyCorpus(500, 1).lines[0], TokenLevel::kWord, 0);
  CHECK(words.size() == 21);
}

TEST_CASE("A generated corpus round-trips through its folder at both levels", "[runtime][corpus]") {
  TempDir dir;
  CorpusText text = GenerateTinyCorpus(120, 9);
  text.word_vocabulary_cap = 12;  // smaller than the grammar: the rarest words become <unk>
  REQUIRE(WriteTextCorpus(dir.path(), text).ok());
  for (int s = 0; s < kCorpusSplits; ++s) {
    const auto split = static_cast<CorpusSplit>(s);
    CHECK(ReadAllLines(dir.File(std::string(CorpusSplitName(split)) + ".txt")) == text.lines[static_cast<size_t>(s)]);
  }

  auto words = TextCorpus::Load(dir.path(), TokenLevel::kWord);
  REQUIRE(words.ok());
  CHECK(words->level() == TokenLevel::kWord);
  CHECK(words->manifest("source") == "GenerateTinyCorpus(120, 9)");
  CHECK(words->manifest("word_vocabulary_cap") == "12");
  CHECK(words->manifest("absent").empty());
  const Vocabulary& word_vocabulary = words->vocabulary();
  CHECK(word_vocabulary.size() == 12);
  const Vocabulary built = Vocabulary::Build(text.lines[0], TokenLevel::kWord, 12);
  CHECK(word_vocabulary.tokens() == built.tokens());
  CHECK(word_vocabulary.counts() == built.counts());
  CHECK(word_vocabulary.count(kUnknownId) > 0);
  CHECK(word_vocabulary.count(kEndOfLineId) == 120);

  auto chars = TextCorpus::Load(dir.path(), TokenLevel::kChar);
  REQUIRE(chars.ok());
  for (int s = 0; s < kCorpusSplits; ++s) {
    const auto split = static_cast<CorpusSplit>(s);
    const std::vector<std::string>& lines = text.lines[static_cast<size_t>(s)];
    const Tensor& word_ids = words->tokens(split);
    const Tensor& char_ids = chars->tokens(split);
    CHECK(Ids(word_ids) == Ids(EncodeLines(lines, word_vocabulary, TokenLevel::kWord)));
    CHECK(word_ids.dtype() == DType::kInt32);
    // Every character of the grammar occurs in training, so characters decode to the text itself.
    std::string joined;
    for (const std::string& line : lines) joined += line + "\n";
    CHECK(DecodeTokens(char_ids, chars->vocabulary(), TokenLevel::kChar) == joined);
    // Words decode to the lowercased tokens, the out-of-vocabulary ones as <unk>.
    std::string expected_words;
    for (const std::string& line : lines) {
      std::string decoded;
      for (const std::string& token : TokenizeWords(line))
        decoded += (decoded.empty() ? "" : " ") + (word_vocabulary.Contains(token) ? token : "<unk>");
      expected_words += decoded + "\n";
    }
    CHECK(DecodeTokens(word_ids, word_vocabulary, TokenLevel::kWord) == expected_words);
    CHECK(words->manifest(std::string(CorpusSplitName(split)) + ".lines") == std::to_string(lines.size()));
  }
}

TEST_CASE("WriteTextCorpus refuses unclean lines and empty splits", "[runtime][corpus]") {
  TempDir dir;
  CorpusText text = GenerateTinyCorpus(10, 1);
  text.lines[1][0] = " padded  line";
  const Status unclean = WriteTextCorpus(dir.path(), text);
  REQUIRE_FALSE(unclean.ok());
  CHECK(unclean.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(unclean.message(), Catch::Contains("valid line 1 ' padded  line' is not clean"));
  text.lines[1].clear();
  CHECK_THAT(WriteTextCorpus(dir.path(), text).message(),
             Catch::Contains("the valid split of the corpus has no lines"));
  CHECK_FALSE(fs::exists(dir.File("manifest.tsv")));
}

TEST_CASE("TextCorpus errors name the file and the script that makes it", "[runtime][corpus]") {
  TempDir dir;
  SECTION("a missing corpus") {
    auto missing = TextCorpus::Load(dir.File("nowhere"), TokenLevel::kWord);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.status().code() == StatusCode::kNotFound);
    CHECK_THAT(missing.status().message(), Catch::StartsWith(dir.File("nowhere/manifest.tsv") + ": no such file"));
    CHECK_THAT(missing.status().message(), Catch::Contains("`bash tools/data/prepare_austen.sh`"));
    CHECK_THAT(missing.status().message(), Catch::Contains("r-cran-janeaustenr"));
  }
  REQUIRE(WriteTextCorpus(dir.path(), GenerateTinyCorpus(40, 2)).ok());
  SECTION("a missing vocabulary or split file") {
    fs::remove(dir.File("vocab.char.tsv"));
    CHECK(TextCorpus::Load(dir.path(), TokenLevel::kWord).ok());
    auto chars = TextCorpus::Load(dir.path(), TokenLevel::kChar);
    REQUIRE_FALSE(chars.ok());
    CHECK_THAT(chars.status().message(), Catch::StartsWith(dir.File("vocab.char.tsv") + ": no such file"));
    fs::remove(dir.File("test.txt"));
    auto words = TextCorpus::Load(dir.path(), TokenLevel::kWord);
    REQUIRE_FALSE(words.ok());
    CHECK(words.status().code() == StatusCode::kNotFound);
    CHECK_THAT(words.status().message(), Catch::StartsWith(dir.File("test.txt") + ": no such file"));
  }
  SECTION("a split file edited after it was prepared") {
    std::vector<std::string> lines = ReadAllLines(dir.File("valid.txt"));
    lines.pop_back();
    Rewrite(dir.File("valid.txt"), lines);
    auto words = TextCorpus::Load(dir.path(), TokenLevel::kWord);
    REQUIRE_FALSE(words.ok());
    CHECK(words.status().code() == StatusCode::kDataLoss);
    CHECK_THAT(words.status().message(), Catch::StartsWith(dir.File("valid.txt") + " has "));
    CHECK_THAT(words.status().message(),
               Catch::Contains("word tokens (3 lines, one <eos> each) but manifest.tsv says"));
  }
  SECTION("a manifest of another format, or without an entry") {
    std::vector<std::string> manifest = ReadAllLines(dir.File("manifest.tsv"));
    REQUIRE(manifest[0] == "format\tsieve-text-corpus 1");
    manifest[0] = "format\tsieve-text-corpus 0";
    Rewrite(dir.File("manifest.tsv"), manifest);
    auto old = TextCorpus::Load(dir.path(), TokenLevel::kWord);
    REQUIRE_FALSE(old.ok());
    CHECK_THAT(old.status().message(),
               Catch::StartsWith(dir.File("manifest.tsv") + ": format is 'sieve-text-corpus 0', expected "
                                                            "'sieve-text-corpus 1'"));
    manifest[0] = "format\tsieve-text-corpus 1";
    std::erase_if(manifest, [](const std::string& line) { return line.rfind("train.char\t", 0) == 0; });
    Rewrite(dir.File("manifest.tsv"), manifest);
    CHECK(TextCorpus::Load(dir.path(), TokenLevel::kWord).ok());
    CHECK_THAT(TextCorpus::Load(dir.path(), TokenLevel::kChar).status().message(),
               Catch::Contains("manifest.tsv: no 'train.char' entry"));
  }
  SECTION("a malformed vocabulary line") {
    std::vector<std::string> vocabulary = ReadAllLines(dir.File("vocab.word.tsv"));
    vocabulary[3] = "cat\tmany";
    Rewrite(dir.File("vocab.word.tsv"), vocabulary);
    auto words = TextCorpus::Load(dir.path(), TokenLevel::kWord);
    REQUIRE_FALSE(words.ok());
    CHECK(words.status().code() == StatusCode::kDataLoss);
    CHECK_THAT(words.status().message(), Catch::StartsWith(dir.File("vocab.word.tsv") + ":4: 'many' is not a count"));
    vocabulary[3] = vocabulary[2];
    Rewrite(dir.File("vocab.word.tsv"), vocabulary);
    CHECK_THAT(TextCorpus::Load(dir.path(), TokenLevel::kWord).status().message(),
               Catch::Contains("appears twice, as ids 2 and 3"));
  }
}

TEST_CASE("SIEVE_DATA_DIR moves the Austen corpus folder", "[runtime][corpus]") {
  {
    ScopedEnv env("SIEVE_DATA_DIR", "/some/where");
    CHECK(AustenDefaultDir() == "/some/where/austen");
  }
  ScopedEnv env("SIEVE_DATA_DIR", "");
  CHECK(AustenDefaultDir() == "data/austen");
}

// The prepared corpus: $SIEVE_DATA_DIR/austen, else data/austen of the repository this test was
// built from.
std::string PreparedAustenDir() {
  const char* root = std::getenv("SIEVE_DATA_DIR");
  if (root != nullptr && *root != '\0') return AustenDefaultDir();
  return (fs::path(__FILE__).parent_path().parent_path().parent_path().parent_path() / "data" / "austen").string();
}

TEST_CASE("The real Austen corpus: R and C++ tokenise alike", "[runtime][corpus][austen]") {
  const std::string dir = PreparedAustenDir();
  if (!fs::exists(fs::path(dir) / "manifest.tsv")) {
    WARN("the Jane Austen corpus is not prepared in " << dir << " (bash tools/data/prepare_austen.sh); skipped");
    return;
  }
  const std::vector<std::string> train = ReadAllLines((fs::path(dir) / "train.txt").string());
  for (const TokenLevel level : {TokenLevel::kWord, TokenLevel::kChar}) {
    INFO(TokenLevelName(level) << " level");
    // Load checks its token counts against the manifest that the R script wrote.
    auto corpus = TextCorpus::Load(dir, level);
    REQUIRE(corpus.ok());
    const Vocabulary& vocabulary = corpus->vocabulary();
    const Vocabulary built = Vocabulary::Build(train, level, level == TokenLevel::kWord ? kWordVocabularyCap : 0);
    CHECK(vocabulary.tokens() == built.tokens());
    CHECK(vocabulary.counts() == built.counts());
    if (level == TokenLevel::kWord) {
      CHECK(vocabulary.size() == kWordVocabularyCap);
      CHECK(vocabulary.token(2) == ",");
      CHECK(vocabulary.token(4) == "the");
    }
    for (int s = 0; s < kCorpusSplits; ++s) {
      const auto split = static_cast<CorpusSplit>(s);
      CHECK(corpus->tokens(split).numel() > (split == CorpusSplit::kTrain ? 800000 : 40000));
    }
  }
}

}  // namespace
}  // namespace sieve::runtime
