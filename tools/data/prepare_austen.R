# Extracts Jane Austen's six novels from the R package janeaustenr (Debian: r-cran-janeaustenr) into a
# Sieve text corpus: cleaned plain-text lines split into train/valid/test, word- and character-level
# vocabularies, and a manifest with the token counts. prepare_austen.sh runs this; it does not
# install anything or decide where the corpus goes. The layout and the tokenisation rules are those of
# runtime/data/text_corpus.h, whose loader checks its own token counts against this manifest.
#
# Usage: Rscript prepare_austen.R OUTPUT_DIR   (OUTPUT_DIR must exist and be empty)

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 1) stop("usage: Rscript prepare_austen.R OUTPUT_DIR")
out_dir <- args[[1]]

word_vocabulary_cap <- 10000L
unknown <- "<unk>"
end_of_line <- "<eos>"
splits <- c("train", "valid", "test")

# --- Cleaning: drop the underscores that mark italics, collapse whitespace, drop empty lines. ---
clean_lines <- function(text) {
  text <- enc2utf8(text)
  stopifnot(all(validUTF8(text)))
  text <- gsub("_", "", text, fixed = TRUE)
  text <- gsub("[[:space:]]+", " ", text, perl = TRUE)
  text <- gsub("^ | $", "", text, perl = TRUE)
  text[nzchar(text)]
}

# --- The split: per book, its first 90% of lines train, the next 5% valid, the last 5% test. ---
books <- janeaustenr::austen_books()
titles <- levels(books$book)
split_lines <- setNames(vector("list", length(splits)), splits)
for (s in splits) split_lines[[s]] <- character(0)
for (title in titles) {
  lines <- clean_lines(as.character(books$text[books$book == title]))
  n <- length(lines)
  n_train <- floor(0.90 * n)
  n_valid <- floor(0.05 * n)
  part <- c(rep("train", n_train), rep("valid", n_valid), rep("test", n - n_train - n_valid))
  for (s in splits) split_lines[[s]] <- c(split_lines[[s]], lines[part == s])
}

# --- Tokenisation (the same rules as TokenizeWords and TokenizeChars in text_corpus.h). ---
# Words: ASCII letters lowercased; a word is a run of [a-z0-9] with single inner apostrophes or
# hyphens ("don't", "good-humoured"); a run of hyphens ("--") is one token; every other
# non-space character is a token of its own.
word_pattern <- "[a-z0-9]+(?:['-][a-z0-9]+)*|-+|[^ ]"
tokenize_words <- function(lines) {
  lower <- chartr("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz", lines)
  regmatches(lower, gregexpr(word_pattern, lower, perl = TRUE))
}
# Characters: every Unicode code point of the line, spaces included.
tokenize_chars <- function(lines) strsplit(lines, "", fixed = TRUE)

# Token counts in the training lines: <unk> first, <eos> second (one per line), then the most frequent
# tokens, ties in byte order, at most `cap` entries in all (NA: no cap); <unk> counts the tokens left out.
build_vocabulary <- function(tokens_per_line, cap) {
  counts <- table(unlist(tokens_per_line))
  tokens <- names(counts)
  counts <- as.numeric(counts)
  by_frequency <- order(-counts, tokens, method = "radix")
  tokens <- tokens[by_frequency]
  counts <- counts[by_frequency]
  keep <- if (is.na(cap)) length(tokens) else min(length(tokens), cap - 2L)
  data.frame(token = c(unknown, end_of_line, tokens[seq_len(keep)]),
             count = c(sum(counts) - sum(counts[seq_len(keep)]), length(tokens_per_line), counts[seq_len(keep)]),
             stringsAsFactors = FALSE)
}

write_utf8_lines <- function(lines, path) {
  con <- file(path, open = "wb")
  on.exit(close(con))
  writeLines(enc2utf8(lines), con, sep = "\n", useBytes = TRUE)
}

write_vocabulary <- function(vocabulary, path) {
  write_utf8_lines(paste0(vocabulary$token, "\t", format(vocabulary$count, scientific = FALSE, trim = TRUE)), path)
}

# --- Output. ---
for (s in splits) write_utf8_lines(split_lines[[s]], file.path(out_dir, paste0(s, ".txt")))
word_vocabulary <- build_vocabulary(tokenize_words(split_lines$train), word_vocabulary_cap)
char_vocabulary <- build_vocabulary(tokenize_chars(split_lines$train), NA)
write_vocabulary(word_vocabulary, file.path(out_dir, "vocab.word.tsv"))
write_vocabulary(char_vocabulary, file.path(out_dir, "vocab.char.tsv"))

# Tokens per split, one <eos> per line included.
count_tokens <- function(tokens_per_line) sum(lengths(tokens_per_line)) + length(tokens_per_line)
manifest <- c(
  "format\tsieve-text-corpus 1",
  paste0("source\tjaneaustenr ", as.character(packageVersion("janeaustenr")), " (Debian package r-cran-janeaustenr): ",
         paste(titles, collapse = "; ")),
  "split\tper book: its first 90% of non-empty lines train, the next 5% valid, the last 5% test",
  paste0("word_vocabulary_cap\t", word_vocabulary_cap),
  paste0("vocab.word\t", nrow(word_vocabulary)),
  paste0("vocab.char\t", nrow(char_vocabulary)))
for (s in splits) {
  manifest <- c(manifest,
                paste0(s, ".lines\t", length(split_lines[[s]])),
                paste0(s, ".word\t", format(count_tokens(tokenize_words(split_lines[[s]])), scientific = FALSE)),
                paste0(s, ".char\t", format(count_tokens(tokenize_chars(split_lines[[s]])), scientific = FALSE)))
}
write_utf8_lines(manifest, file.path(out_dir, "manifest.tsv"))
