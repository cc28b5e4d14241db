// Tokenisers, vocabularies, the corpus folder writer and loader, and the generated tiny corpus.
#include "runtime/data/text_corpus.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <utility>

#include "framework/rng.h"

namespace sieve::runtime {

namespace {

namespace fs = std::filesystem;

constexpr std::string_view kFormat = "sieve-text-corpus 1";
constexpr const char* kManifestFile = "manifest.tsv";
constexpr const char* kPrepareScript = "bash tools/data/prepare_austen.sh";

bool IsAsciiAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
char AsciiLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// Bytes in the UTF-8 sequence that starts with `lead` (1 for a continuation or invalid byte).
size_t Utf8Length(unsigned char lead) {
  if (lead >= 0xF0 && lead <= 0xF7) return 4;
  if (lead >= 0xE0) return lead <= 0xEF ? 3 : 1;
  if (lead >= 0xC0) return 2;
  return 1;
}

// The code point starting at `at` of `text`, as its bytes (one byte when malformed).
size_t CodePointLength(std::string_view text, size_t at) {
  const size_t n = Utf8Length(static_cast<unsigned char>(text[at]));
  if (at + n > text.size()) return 1;
  for (size_t k = 1; k < n; ++k) {
    if ((static_cast<unsigned char>(text[at + k]) & 0xC0) != 0x80) return 1;
  }
  return n;
}

std::string CorpusFile(const std::string& dir, const std::string& name) { return (fs::path(dir) / name).string(); }
std::string SplitFile(const std::string& dir, CorpusSplit split) {
  return CorpusFile(dir, std::string(CorpusSplitName(split)) + ".txt");
}
std::string VocabularyFile(const std::string& dir, TokenLevel level) {
  return CorpusFile(dir, std::string("vocab.") + TokenLevelName(level) + ".tsv");
}

Status MissingFile(const std::string& path) {
  return SIEVE_ERROR(StatusCode::kNotFound,
                     path << ": no such file. The Jane Austen corpus is made by `" << kPrepareScript
                          << "` (from the Debian package r-cran-janeaustenr), which writes data/austen under the "
                             "repository, or $SIEVE_DATA_DIR/austen when SIEVE_DATA_DIR is set");
}

// The lines of a text file, without their line breaks.
StatusOr<std::vector<std::string>> ReadLines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) return MissingFile(path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  SIEVE_ENSURE(in.eof(), StatusCode::kDataLoss, path << ": read error after line " << lines.size());
  return lines;
}

Status WriteLines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  for (const std::string& line : lines) out << line << '\n';
  out.flush();
  SIEVE_ENSURE(out.good(), StatusCode::kUnavailable, path << ": cannot write the file");
  return Status::Ok();
}

// `where` names the file and line or entry the text comes from.
StatusOr<int64_t> ParseCount(const std::string& text, const std::string& where) {
  char* end = nullptr;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  SIEVE_ENSURE(!text.empty() && end == text.c_str() + text.size() && value >= 0, StatusCode::kDataLoss,
               where << ": '" << text << "' is not a count");
  return static_cast<int64_t>(value);
}

std::string ManifestKey(CorpusSplit split, TokenLevel level) {
  return std::string(CorpusSplitName(split)) + "." + TokenLevelName(level);
}

StatusOr<std::unordered_map<std::string, std::string>> ReadManifest(const std::string& dir) {
  const std::string path = CorpusFile(dir, kManifestFile);
  SIEVE_ASSIGN_OR_RETURN(const std::vector<std::string> lines, ReadLines(path));
  std::unordered_map<std::string, std::string> manifest;
  for (size_t i = 0; i < lines.size(); ++i) {
    const size_t tab = lines[i].find('\t');
    SIEVE_ENSURE(tab != std::string::npos, StatusCode::kDataLoss,
                 path << ":" << i + 1 << ": expected 'key<TAB>value', got '" << lines[i] << "'");
    manifest[lines[i].substr(0, tab)] = lines[i].substr(tab + 1);
  }
  const auto format = manifest.find("format");
  SIEVE_ENSURE(format != manifest.end() && format->second == kFormat, StatusCode::kDataLoss,
               path << ": format is '" << (format == manifest.end() ? "(none)" : format->second) << "', expected '"
                    << kFormat << "'; prepare the corpus again with `" << kPrepareScript << "`");
  return manifest;
}

StatusOr<int64_t> ManifestCount(const std::unordered_map<std::string, std::string>& manifest, const std::string& dir,
                                const std::string& key) {
  const std::string path = CorpusFile(dir, kManifestFile);
  const auto it = manifest.find(key);
  SIEVE_ENSURE(it != manifest.end(), StatusCode::kDataLoss, path << ": no '" << key << "' entry");
  return ParseCount(it->second, path + " entry '" + key + "'");
}

StatusOr<Vocabulary> ReadVocabulary(const std::string& path) {
  SIEVE_ASSIGN_OR_RETURN(const std::vector<std::string> lines, ReadLines(path));
  std::vector<std::string> tokens;
  std::vector<int64_t> counts;
  for (size_t i = 0; i < lines.size(); ++i) {
    const size_t tab = lines[i].rfind('\t');
    SIEVE_ENSURE(tab != std::string::npos && tab > 0, StatusCode::kDataLoss,
                 path << ":" << i + 1 << ": expected 'token<TAB>count', got '" << lines[i] << "'");
    SIEVE_ASSIGN_OR_RETURN(const int64_t count,
                           ParseCount(lines[i].substr(tab + 1), path + ":" + std::to_string(i + 1)));
    tokens.push_back(lines[i].substr(0, tab));
    counts.push_back(count);
  }
  StatusOr<Vocabulary> vocabulary = Vocabulary::Create(std::move(tokens), std::move(counts));
  SIEVE_ENSURE(vocabulary.ok(), StatusCode::kDataLoss, path << ": " << vocabulary.status().message());
  return vocabulary;
}

Status WriteVocabulary(const std::string& path, const Vocabulary& vocabulary) {
  std::vector<std::string> lines;
  for (int32_t id = 0; id < vocabulary.size(); ++id)
    lines.push_back(vocabulary.token(id) + "\t" + std::to_string(vocabulary.count(id)));
  return WriteLines(path, lines);
}

int64_t CountTokens(const std::vector<std::string>& lines, TokenLevel level) {
  int64_t tokens = 0;
  for (const std::string& line : lines) tokens += static_cast<int64_t>(Tokenize(line, level).size()) + 1;
  return tokens;
}

}  // namespace

const char* TokenLevelName(TokenLevel level) {
  switch (level) {
    case TokenLevel::kWord:
      return "word";
    case TokenLevel::kChar:
      return "char";
  }
  return "?";
}

const char* CorpusSplitName(CorpusSplit split) {
  switch (split) {
    case CorpusSplit::kTrain:
      return "train";
    case CorpusSplit::kValid:
      return "valid";
    case CorpusSplit::kTest:
      return "test";
    case CorpusSplit::kCount:
      break;
  }
  return "?";
}

std::string CleanLine(std::string_view line) {
  std::string out;
  bool pending_space = false;
  for (const char c : line) {
    if (c == '_') continue;
    if (IsSpace(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

std::vector<std::string> TokenizeWords(std::string_view line) {
  std::vector<std::string> tokens;
  size_t i = 0;
  const size_t n = line.size();
  auto alnum_at = [&](size_t k) { return k < n && IsAsciiAlnum(AsciiLower(line[k])); };
  while (i < n) {
    if (line[i] == ' ') {
      ++i;
    } else if (alnum_at(i)) {
      std::string word;
      while (true) {
        while (alnum_at(i)) word.push_back(AsciiLower(line[i++]));
        // A single apostrophe or hyphen between two letters or digits joins them.
        if (i + 1 < n && (line[i] == '\'' || line[i] == '-') && alnum_at(i + 1)) {
          word.push_back(line[i++]);
        } else {
          break;
        }
      }
      tokens.push_back(std::move(word));
    } else if (line[i] == '-') {
      const size_t start = i;
      while (i < n && line[i] == '-') ++i;
      tokens.emplace_back(line.substr(start, i - start));
    } else {
      const size_t length = CodePointLength(line, i);
      tokens.emplace_back(line.substr(i, length));
      i += length;
    }
  }
  return tokens;
}

std::vector<std::string> TokenizeChars(std::string_view line) {
  std::vector<std::string> tokens;
  for (size_t i = 0; i < line.size();) {
    const size_t length = CodePointLength(line, i);
    tokens.emplace_back(line.substr(i, length));
    i += length;
  }
  return tokens;
}

std::vector<std::string> Tokenize(std::string_view line, TokenLevel level) {
  return level == TokenLevel::kWord ? TokenizeWords(line) : TokenizeChars(line);
}

StatusOr<Vocabulary> Vocabulary::Create(std::vector<std::string> tokens, std::vector<int64_t> counts) {
  SIEVE_ENSURE(tokens.size() == counts.size(), StatusCode::kInvalidArgument,
               "vocabulary has " << tokens.size() << " tokens but " << counts.size() << " counts");
  SIEVE_ENSURE(tokens.size() >= 2 && tokens[0] == kUnknownToken && tokens[1] == kEndOfLineToken,
               StatusCode::kInvalidArgument,
               "a vocabulary starts with " << kUnknownToken << " (id 0) and " << kEndOfLineToken << " (id 1), got '"
                                           << (tokens.empty() ? "" : tokens[0]) << "', '"
                                           << (tokens.size() < 2 ? "" : tokens[1]) << "'");
  SIEVE_ENSURE(tokens.size() <= static_cast<size_t>(INT32_MAX), StatusCode::kInvalidArgument,
               "vocabulary of " << tokens.size() << " tokens does not fit int32 ids");
  Vocabulary vocabulary;
  for (size_t id = 0; id < tokens.size(); ++id) {
    SIEVE_ENSURE(!tokens[id].empty(), StatusCode::kInvalidArgument, "vocabulary entry " << id << " is empty");
    SIEVE_ENSURE(counts[id] >= 0, StatusCode::kInvalidArgument,
                 "vocabulary entry " << id << " ('" << tokens[id] << "') has a negative count " << counts[id]);
    const auto [it, inserted] = vocabulary.ids_.emplace(tokens[id], static_cast<int32_t>(id));
    SIEVE_ENSURE(inserted, StatusCode::kInvalidArgument,
                 "vocabulary token '" << tokens[id] << "' appears twice, as ids " << it->second << " and " << id);
  }
  vocabulary.tokens_ = std::move(tokens);
  vocabulary.counts_ = std::move(counts);
  return vocabulary;
}

Vocabulary Vocabulary::Build(const std::vector<std::string>& lines, TokenLevel level, int64_t max_size) {
  SIEVE_CHECK(max_size == 0 || max_size >= 2, "a vocabulary cap of " << max_size << " leaves no room for "
                                                                     << kUnknownToken << " and " << kEndOfLineToken);
  std::unordered_map<std::string, int64_t> frequency;
  for (const std::string& line : lines) {
    for (std::string& token : Tokenize(line, level)) ++frequency[std::move(token)];
  }
  std::vector<std::pair<std::string, int64_t>> ranked(frequency.begin(), frequency.end());
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  const size_t keep = max_size == 0 ? ranked.size() : std::min(ranked.size(), static_cast<size_t>(max_size - 2));
  std::vector<std::string> tokens = {std::string(kUnknownToken), std::string(kEndOfLineToken)};
  std::vector<int64_t> counts = {0, static_cast<int64_t>(lines.size())};
  for (size_t i = 0; i < ranked.size(); ++i) {
    if (i < keep) {
      tokens.push_back(ranked[i].first);
      counts.push_back(ranked[i].second);
    } else {
      counts[kUnknownId] += ranked[i].second;
    }
  }
  StatusOr<Vocabulary> vocabulary = Create(std::move(tokens), std::move(counts));
  SIEVE_CHECK(vocabulary.ok(), vocabulary.status().ToString());
  return *std::move(vocabulary);
}

const std::string& Vocabulary::token(int32_t id) const {
  SIEVE_CHECK(id >= 0 && id < size(), "token id " << id << " is outside the vocabulary [0, " << size() << ")");
  return tokens_[static_cast<size_t>(id)];
}

int64_t Vocabulary::count(int32_t id) const {
  SIEVE_CHECK(id >= 0 && id < size(), "token id " << id << " is outside the vocabulary [0, " << size() << ")");
  return counts_[static_cast<size_t>(id)];
}

int32_t Vocabulary::Id(const std::string& token) const {
  const auto it = ids_.find(token);
  return it == ids_.end() ? kUnknownId : it->second;
}

Tensor EncodeLines(const std::vector<std::string>& lines, const Vocabulary& vocabulary, TokenLevel level) {
  std::vector<int32_t> ids;
  for (const std::string& line : lines) {
    for (const std::string& token : Tokenize(line, level)) ids.push_back(vocabulary.Id(token));
    ids.push_back(kEndOfLineId);
  }
  Tensor tensor = Tensor::Empty({static_cast<int64_t>(ids.size())}, DType::kInt32);
  std::copy(ids.begin(), ids.end(), tensor.data<int32_t>());
  return tensor;
}

std::string DecodeTokens(const Tensor& ids, const Vocabulary& vocabulary, TokenLevel level) {
  SIEVE_CHECK(ids.device().is_cpu() && ids.dtype() == DType::kInt32 && ids.is_contiguous(),
              "DecodeTokens needs contiguous CPU int32 ids, got " << ids.ToString());
  std::string text;
  bool line_start = true;
  const int32_t* id = ids.data<int32_t>();
  for (int64_t i = 0; i < ids.numel(); ++i) {
    if (id[i] == kEndOfLineId) {
      text.push_back('\n');
      line_start = true;
      continue;
    }
    if (level == TokenLevel::kWord && !line_start) text.push_back(' ');
    text += vocabulary.token(id[i]);
    line_start = false;
  }
  return text;
}

Status WriteTextCorpus(const std::string& dir, const CorpusText& text) {
  SIEVE_ENSURE(text.word_vocabulary_cap >= 2, StatusCode::kInvalidArgument,
               "word_vocabulary_cap " << text.word_vocabulary_cap << " leaves no room for " << kUnknownToken << " and "
                                      << kEndOfLineToken);
  for (int s = 0; s < kCorpusSplits; ++s) {
    const auto split = static_cast<CorpusSplit>(s);
    const std::vector<std::string>& lines = text.lines[static_cast<size_t>(s)];
    SIEVE_ENSURE(!lines.empty(), StatusCode::kInvalidArgument,
                 "the " << CorpusSplitName(split) << " split of the corpus has no lines");
    for (size_t i = 0; i < lines.size(); ++i) {
      SIEVE_ENSURE(!lines[i].empty() && CleanLine(lines[i]) == lines[i], StatusCode::kInvalidArgument,
                   CorpusSplitName(split) << " line " << i + 1 << " '" << lines[i]
                                          << "' is not clean (see CleanLine): '" << CleanLine(lines[i]) << "'");
    }
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  SIEVE_ENSURE(!ec, StatusCode::kUnavailable, dir << ": cannot create the folder: " << ec.message());
  const std::vector<std::string>& train = text.lines[static_cast<size_t>(CorpusSplit::kTrain)];
  const Vocabulary words = Vocabulary::Build(train, TokenLevel::kWord, text.word_vocabulary_cap);
  const Vocabulary chars = Vocabulary::Build(train, TokenLevel::kChar, 0);
  std::vector<std::string> manifest = {
      "format\t" + std::string(kFormat),
      "source\t" + text.source,
      "split\t" + text.split_rule,
      "word_vocabulary_cap\t" + std::to_string(text.word_vocabulary_cap),
      "vocab.word\t" + std::to_string(words.size()),
      "vocab.char\t" + std::to_string(chars.size()),
  };
  for (int s = 0; s < kCorpusSplits; ++s) {
    const auto split = static_cast<CorpusSplit>(s);
    const std::vector<std::string>& lines = text.lines[static_cast<size_t>(s)];
    SIEVE_RETURN_IF_ERROR(WriteLines(SplitFile(dir, split), lines));
    manifest.push_back(std::string(CorpusSplitName(split)) + ".lines\t" + std::to_string(lines.size()));
    for (TokenLevel level : {TokenLevel::kWord, TokenLevel::kChar})
      manifest.push_back(ManifestKey(split, level) + "\t" + std::to_string(CountTokens(lines, level)));
  }
  SIEVE_RETURN_IF_ERROR(WriteVocabulary(VocabularyFile(dir, TokenLevel::kWord), words));
  SIEVE_RETURN_IF_ERROR(WriteVocabulary(VocabularyFile(dir, TokenLevel::kChar), chars));
  return WriteLines(CorpusFile(dir, kManifestFile), manifest);
}

CorpusText GenerateTinyCorpus(int64_t train_lines, uint64_t seed) {
  SIEVE_CHECK(train_lines >= 1, "the tiny corpus needs at least one training line, got " << train_lines);
  static const std::vector<std::string> kDeterminers = {"the", "a"};
  static const std::vector<std::string> kAdjectives = {"small", "big", "red", "old"};
  static const std::vector<std::string> kNouns = {"cat", "dog", "bird", "fox"};
  static const std::vector<std::string> kVerbs = {"sees", "likes", "chases"};   // statements
  static const std::vector<std::string> kBareVerbs = {"see", "like", "chase"};  // questions
  // Site 1 of the data streams (the batch loader's epoch orders are site 0).
  const RandomStream stream{seed, MakeStreamId(StreamKind::kData, 1, 0)};
  auto line = [&](int64_t index) {
    uint64_t draw = static_cast<uint64_t>(index) * 16;  // a line makes at most 10 draws
    auto pick = [&](const std::vector<std::string>& words) { return words[stream.Bits(draw++) % words.size()]; };
    const bool question = stream.Bits(draw++) % 4 == 0;
    std::vector<std::string> words;
    auto noun_phrase = [&] {
      words.push_back(pick(kDeterminers));
      if (stream.Bits(draw++) % 2 == 0) words.push_back(pick(kAdjectives));
      words.push_back(pick(kNouns));
    };
    if (question) words.push_back("does");
    noun_phrase();
    words.push_back(pick(question ? kBareVerbs : kVerbs));
    noun_phrase();
    std::string text;
    for (const std::string& word : words) text += (text.empty() ? "" : " ") + word;
    text[0] = static_cast<char>(text[0] - 'a' + 'A');
    return text + (question ? "?" : ".");
  };
  CorpusText corpus;
  corpus.source = "GenerateTinyCorpus(" + std::to_string(train_lines) + ", " + std::to_string(seed) + ")";
  corpus.split_rule = "generated: lines [0, n) train, the next n/10 valid, the next n/10 test";
  const int64_t held_out = std::max<int64_t>(1, train_lines / 10);
  int64_t index = 0;
  for (int s = 0; s < kCorpusSplits; ++s) {
    const int64_t n = s == 0 ? train_lines : held_out;
    for (int64_t i = 0; i < n; ++i) corpus.lines[static_cast<size_t>(s)].push_back(line(index++));
  }
  return corpus;
}

std::string AustenDefaultDir() {
  const char* root = std::getenv("SIEVE_DATA_DIR");
  if (root != nullptr && *root != '\0') return (fs::path(root) / "austen").string();
  return "data/austen";
}

const std::string& TextCorpus::manifest(const std::string& key) const {
  static const std::string kAbsent;
  const auto it = manifest_.find(key);
  return it == manifest_.end() ? kAbsent : it->second;
}

StatusOr<TextCorpus> TextCorpus::Load(const std::string& dir_or_empty, TokenLevel level) {
  TextCorpus corpus;
  corpus.level_ = level;
  corpus.dir_ = dir_or_empty.empty() ? AustenDefaultDir() : dir_or_empty;
  const std::string& dir = corpus.dir_;
  SIEVE_ASSIGN_OR_RETURN(corpus.manifest_, ReadManifest(dir));
  const std::string vocabulary_path = VocabularyFile(dir, level);
  SIEVE_ASSIGN_OR_RETURN(corpus.vocabulary_, ReadVocabulary(vocabulary_path));
  SIEVE_ASSIGN_OR_RETURN(const int64_t vocabulary_size,
                         ManifestCount(corpus.manifest_, dir, std::string("vocab.") + TokenLevelName(level)));
  SIEVE_ENSURE(corpus.vocabulary_.size() == vocabulary_size, StatusCode::kDataLoss,
               vocabulary_path << " has " << corpus.vocabulary_.size() << " tokens but " << kManifestFile << " says "
                               << vocabulary_size);
  for (int s = 0; s < kCorpusSplits; ++s) {
    const auto split = static_cast<CorpusSplit>(s);
    const std::string path = SplitFile(dir, split);
    SIEVE_ASSIGN_OR_RETURN(const std::vector<std::string> lines, ReadLines(path));
    Tensor ids = EncodeLines(lines, corpus.vocabulary_, level);
    SIEVE_ASSIGN_OR_RETURN(const int64_t expected, ManifestCount(corpus.manifest_, dir, ManifestKey(split, level)));
    SIEVE_ENSURE(ids.numel() == expected, StatusCode::kDataLoss,
                 path << " has " << ids.numel() << " " << TokenLevelName(level) << " tokens (" << lines.size()
                      << " lines, one <eos> each) but " << kManifestFile << " says " << expected
                      << "; the file was changed after it was prepared, or it was tokenised by other rules");
    corpus.tokens_[static_cast<size_t>(s)] = std::move(ids);
  }
  return corpus;
}

}  // namespace sieve::runtime
