// `sieve`: the command-line tool — train from a solver file, test, time and inspect models, query
// devices. This file is the verb table and the dispatch; each verb lives in its own file.
//
//   sieve VERB [flags]      sieve --help      sieve VERB --help
//
// Exit codes: 0 success, 1 a failure while running (the message names the file, line and column
// when a model file is at fault), 2 a usage error (an unknown verb or flag, with the nearest valid one).
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "framework/suggest.h"
#include "tools/sieve/cli.h"
#include "tools/sieve/verbs.h"

namespace sieve::cli {

const std::vector<const Verb*>& Verbs() {
  static const std::vector<const Verb*> verbs = {&kTrainVerb, &kTestVerb, &kTimeVerb, &kSearchVerb,
                                                          &kExportVerb, &kDeviceQueryVerb};
  return verbs;
}

namespace {

void PrintTopHelp(std::FILE* out) {
  std::fprintf(out, "usage: sieve VERB [flags]   (sieve VERB --help for a verb's flags)\n\nverbs:\n");
  for (const Verb* verb : Verbs()) std::fprintf(out, "  %-14s %s\n", verb->name.c_str(), verb->summary.c_str());
  std::fprintf(out, "\nExit codes: 0 success, 1 failure, 2 usage error. Reference: docs/cli.md\n");
}

int Main(int argc, char** argv) {
  if (argc < 2) {
    PrintTopHelp(stderr);
    return kExitUsage;
  }
  const std::string word = argv[1];
  if (word == "--help" || word == "-h" || word == "help") {
    PrintTopHelp(stdout);
    return kExitOk;
  }
  std::vector<std::string> names;
  for (const Verb* verb : Verbs()) {
    names.push_back(verb->name);
    if (verb->name != word) continue;
    bool help = false;
    StatusOr<Args> args = ParseArgs(*verb, argc - 2, argv + 2, &help);
    if (help) {
      std::fputs(VerbHelp(*verb).c_str(), stdout);
      return kExitOk;
    }
    if (!args.ok()) return UsageError(*verb, UserMessage(args.status()));
    return verb->run(*verb, *args);
  }
  std::fprintf(stderr, "sieve: unknown %s '%s' (nearest valid verb: '%s'); see 'sieve --help'\n",
               word.rfind("-", 0) == 0 ? "flag" : "verb", word.c_str(), NearestName(word, names).c_str());
  return kExitUsage;
}

}  // namespace
}  // namespace sieve::cli

int main(int argc, char** argv) { return sieve::cli::Main(argc, argv); }
