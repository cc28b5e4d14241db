// Text corpora for language models: the word and character tokenisers, vocabularies, and a corpus
// folder loaded into int32 token ids per split. The Jane Austen corpus is prepared on disk by
// tools/data/prepare_austen.sh (R, from the Debian package r-cran-janeaustenr); WriteTextCorpus writes
// the same layout from C++ (the generated tiny corpus of the tests). Cutting the ids into training
// batches is token_stream.h's job.
//
// A corpus folder holds:
//   train.txt, valid.txt, test.txt   cleaned UTF-8 text, one line per line of the source
//   vocab.word.tsv, vocab.char.tsv   "token<TAB>count" per line; the line number (from 0) is the id
//   manifest.tsv                     "key<TAB>value": the format, the source, the split rule, the word
//                                    vocabulary cap, the vocabulary sizes and the tokens per split
//
// Ids: 0 is <unk> (tokens outside the vocabulary), 1 is <eos> (the end of a line, as in Zaremba et
// al.'s Penn Treebank setup), then the training split's tokens from the most to the least frequent,
// ties in byte order. Counts are those of the training split.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "framework/status.h"
#include "framework/tensor.h"

namespace sieve::runtime {

/// What a token is: a word (lowercased, punctuation split off) or a character (a Unicode code point).
enum class TokenLevel : uint8_t { kWord, kChar };
/// "word", "char".
const char* TokenLevelName(TokenLevel level);

enum class CorpusSplit : uint8_t { kTrain, kValid, kTest, kCount };
inline constexpr int kCorpusSplits = static_cast<int>(CorpusSplit::kCount);
/// "train", "valid", "test".
const char* CorpusSplitName(CorpusSplit split);

inline constexpr std::string_view kUnknownToken = "<unk>";
inline constexpr std::string_view kEndOfLineToken = "<eos>";
inline constexpr int32_t kUnknownId = 0;
inline constexpr int32_t kEndOfLineId = 1;
/// The word vocabulary's size limit, <unk> and <eos> included (the Penn Treebank's 10,000).
inline constexpr int64_t kWordVocabularyCap = 10000;

/// A line as the corpus stores it: underscores (italics markup) removed, runs of whitespace made one
/// space, no leading or trailing space. An empty result is a line the corpus drops.
std::string CleanLine(std::string_view line);

/// Word tokens of a cleaned line: ASCII letters lowercased; a word is a run of [a-z0-9] with single
/// inner apostrophes or hyphens ("don't", "good-humoured"); a run of hyphens ("--") is one token;
/// every other character but the space is a token of its own (",", ".", "\"", "£").
std::vector<std::string> TokenizeWords(std::string_view line);
/// Character tokens of a line: its UTF-8 code points, spaces included (a malformed byte counts as one).
std::vector<std::string> TokenizeChars(std::string_view line);
std::vector<std::string> Tokenize(std::string_view line, TokenLevel level);

/// Tokens and their ids, with each token's count in the text it was built from.
class Vocabulary {
 public:
  Vocabulary() = default;
  /// `tokens` in id order with their counts: entry 0 must be <unk>, entry 1 <eos>, no token twice,
  /// no empty token, counts >= 0. INVALID_ARGUMENT names the offending entry.
  static StatusOr<Vocabulary> Create(std::vector<std::string> tokens, std::vector<int64_t> counts);
  /// The vocabulary of `lines` (cleaned) at `level`: <unk>, <eos> (counting the lines), then every
  /// token from the most to the least frequent, ties in byte order, cut to `max_size` entries in all
  /// (0: no cap, else at least 2); <unk> counts the occurrences of the tokens cut off.
  static Vocabulary Build(const std::vector<std::string>& lines, TokenLevel level, int64_t max_size);

  int64_t size() const { return static_cast<int64_t>(tokens_.size()); }
  const std::string& token(int32_t id) const;
  int64_t count(int32_t id) const;
  /// The id of `token`, kUnknownId when it is not in the vocabulary.
  int32_t Id(const std::string& token) const;
  bool Contains(const std::string& token) const { return ids_.contains(token); }
  const std::vector<std::string>& tokens() const { return tokens_; }
  const std::vector<int64_t>& counts() const { return counts_; }

 private:
  std::vector<std::string> tokens_;
  std::vector<int64_t> counts_;
  std::unordered_map<std::string, int32_t> ids_;
};

/// The ids of `lines` (cleaned) at `level`: each line's tokens, then <eos>. CPU int32 [tokens].
Tensor EncodeLines(const std::vector<std::string>& lines, const Vocabulary& vocabulary, TokenLevel level);
/// Text from ids: word tokens joined by spaces, characters concatenated, <eos> as a line break.
/// Ids outside the vocabulary are a programming error.
std::string DecodeTokens(const Tensor& ids, const Vocabulary& vocabulary, TokenLevel level);

/// A corpus before tokenisation: its cleaned lines per split, and what the manifest says about it.
struct CorpusText {
  std::array<std::vector<std::string>, kCorpusSplits> lines;  // by CorpusSplit
  std::string source;                                         // where the text comes from
  std::string split_rule;                                     // how it was split
  int64_t word_vocabulary_cap = kWordVocabularyCap;
};

/// Writes `text` as a corpus folder `dir` (created if missing): the split files, both vocabularies
/// (built from the training lines) and, last, the manifest, so a folder without a manifest is
/// incomplete. INVALID_ARGUMENT for a line that CleanLine would change (or empty) or an empty split;
/// UNAVAILABLE naming the file that cannot be written.
Status WriteTextCorpus(const std::string& dir, const CorpusText& text);

/// A tiny corpus for tests, a deterministic function of (train_lines, seed): sentences of a small
/// grammar, "The small cat sees a dog." or "Does a fox like the old bird?" (a question in a quarter of
/// the lines: "does", the bare verb and "?" agree across the line), capitalised, over 17 words and 2
/// punctuation marks (a word vocabulary of 21 with <unk> and <eos>). `train_lines` training lines,
/// then a tenth as many (at least one) for valid and for test.
CorpusText GenerateTinyCorpus(int64_t train_lines, uint64_t seed);

/// The Jane Austen corpus folder: $SIEVE_DATA_DIR/austen when SIEVE_DATA_DIR is set and non-empty,
/// else data/austen relative to the working directory (the repository root, where
/// tools/data/prepare_austen.sh writes it by default).
std::string AustenDefaultDir();

/// One corpus folder tokenised at one level: the vocabulary and int32 ids per split.
class TextCorpus {
 public:
  /// Loads `dir` (empty: AustenDefaultDir()) at `level`. Errors name the file: NOT_FOUND for a
  /// missing file, saying that `bash tools/data/prepare_austen.sh` makes the Austen corpus; DATA_LOSS
  /// for a manifest of another format or without a key, a malformed vocabulary line, a vocabulary
  /// size or token count that disagrees with the manifest (both numbers given).
  static StatusOr<TextCorpus> Load(const std::string& dir, TokenLevel level);

  TokenLevel level() const { return level_; }
  const std::string& dir() const { return dir_; }
  const Vocabulary& vocabulary() const { return vocabulary_; }
  /// CPU int32 [tokens] ids of one split: each line's tokens then <eos>, lines in file order.
  const Tensor& tokens(CorpusSplit split) const { return tokens_[static_cast<size_t>(split)]; }
  /// The manifest's value for `key` ("source", "split", ...); empty when absent.
  const std::string& manifest(const std::string& key) const;

 private:
  TokenLevel level_ = TokenLevel::kWord;
  std::string dir_;
  Vocabulary vocabulary_;
  std::array<Tensor, kCorpusSplits> tokens_;
  std::unordered_map<std::string, std::string> manifest_;
};

}  // namespace sieve::runtime
