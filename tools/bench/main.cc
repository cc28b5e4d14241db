// sieve-bench: every Sieve benchmark as a verb of one program (SPEC section 5), like Caffe's
// tools/caffe.cpp. This file parses the common options and dispatches to the registered verb;
// the verbs live in their own files (matmul_bench.cc, ...).
#include <cstdio>
#include <cstdlib>
#include <string>

#include "framework/device.h"
#include "framework/logging.h"
#include "tools/bench/bench_util.h"

namespace {

using sieve::bench::Options;

void PrintUsage(std::FILE* out) {
  std::fprintf(out,
               "usage: sieve-bench <verb> [options]\n"
               "\n"
               "options:\n"
               "  --json PATH         also write the results as JSON to PATH\n"
               "  --quick             reduced matrix (about a minute; zoo: a few)\n"
               "  --reps N            timed repetitions per variant (default: the verb's)\n"
               "  --threads N         OpenMP/OpenBLAS threads (default: one per core)\n"
               "  --device cpu|cuda   where tensors live (default cpu; cuda needs a CUDA build and a GPU)\n"
               "  --help              this message\n"
               "\n"
               "verbs:\n");
  for (const auto& verb : sieve::bench::Verbs())
    std::fprintf(out, "  %-10s %s\n", verb.name.c_str(), verb.help.c_str());
}

// Parses an integer flag value in [lo, 1000000]; exits with a message otherwise.
int IntFlag(const std::string& flag, const std::string& value, int lo) {
  char* end = nullptr;
  const long v = std::strtol(value.c_str(), &end, 10);
  if (end == value.c_str() || *end != '\0' || v < lo || v > 1000000) {
    std::fprintf(stderr, "sieve-bench: %s needs an integer >= %d, got '%s'\n", flag.c_str(), lo, value.c_str());
    std::exit(2);
  }
  return static_cast<int>(v);
}

sieve::Device ParseDevice(const std::string& value) {
  if (value == "cpu") return sieve::Device::CPU();
  if (value == "cuda" || value.rfind("cuda:", 0) == 0) {
    const int index = value == "cuda" ? 0 : IntFlag("--device cuda:N", value.substr(5), 0);
    if (!sieve::CudaCompiled()) {
      std::fprintf(stderr,
                   "sieve-bench: --device %s: this build has no CUDA backend (configure with -DSIEVE_CUDA=ON)\n",
                   value.c_str());
      std::exit(2);
    }
    if (!sieve::CudaAvailable()) {
      std::fprintf(stderr, "sieve-bench: --device %s: no usable CUDA GPU on this machine\n", value.c_str());
      std::exit(2);
    }
    return sieve::Device::CUDA(index);
  }
  std::fprintf(stderr, "sieve-bench: --device must be cpu or cuda[:N], got '%s'\n", value.c_str());
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    PrintUsage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string verb_name = argv[1];
  const sieve::bench::Verb* verb = nullptr;
  const auto verbs = sieve::bench::Verbs();
  for (const auto& v : verbs)
    if (v.name == verb_name) verb = &v;
  if (verb == nullptr) {
    std::fprintf(stderr, "sieve-bench: unknown verb '%s'; known verbs:", verb_name.c_str());
    for (const auto& v : verbs) std::fprintf(stderr, " %s", v.name.c_str());
    std::fprintf(stderr, "\n");
    return 2;
  }

  Options options;
  options.command_line = "sieve-bench";
  for (int i = 1; i < argc; ++i) options.command_line += std::string(" ") + argv[i];
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "sieve-bench: %s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      PrintUsage(stdout);
      return 0;
    } else if (arg == "--json") {
      options.json_path = value();
    } else if (arg == "--quick") {
      options.quick = true;
    } else if (arg == "--reps") {
      options.reps = IntFlag(arg, value(), 1);
    } else if (arg == "--threads") {
      options.threads = IntFlag(arg, value(), 1);
    } else if (arg == "--device") {
      options.device = ParseDevice(value());
    } else {
      options.args.push_back(arg);
    }
  }
  sieve::SetLogLevel("warn");
  sieve::bench::ConfigureThreads(options.threads);
  return verb->run(options);
}
