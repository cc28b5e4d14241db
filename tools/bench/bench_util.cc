// sieve-bench shared machinery: verb registry, interleaved timing, table and JSON report.
#include "tools/bench/bench_util.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "framework/memory.h"
#include "runtime/trainer.h"

#ifdef SIEVE_WITH_CUDA
#include <cuda_runtime.h>
#endif

#ifndef SIEVE_BUILD_TYPE
#define SIEVE_BUILD_TYPE "unknown"
#endif

namespace sieve::bench {

namespace {

std::map<std::string, Verb>& Registry() {
  static std::map<std::string, Verb> registry;
  return registry;
}

// Shortest faithful form for a finite number; JSON has no NaN or infinity.
std::string JsonNumber(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

std::string Fixed(std::optional<double> v, int digits) {
  if (!v) return "-";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, *v);
  return buf;
}

}  // namespace

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  }
  return "unknown";
}

std::string UtcNow() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string GpuName(Device device) {
#ifdef SIEVE_WITH_CUDA
  cudaDeviceProp prop{};
  if (device.is_cuda() && cudaGetDeviceProperties(&prop, device.index) == cudaSuccess) return prop.name;
#endif
  return "";
}

bool RegisterVerb(const char* name, const char* help, VerbFn run) {
  return Registry().emplace(name, Verb{name, help, run}).second;
}

std::vector<Verb> Verbs() {
  std::vector<Verb> verbs;
  for (const auto& [name, verb] : Registry()) verbs.push_back(verb);
  return verbs;
}

Timing Timing::FromSamples(std::vector<double> samples) {
  Timing t;
  t.ms = std::move(samples);
  if (t.ms.empty()) return t;
  std::vector<double> sorted = t.ms;
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  t.median = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
  t.min = sorted.front();
  t.max = sorted.back();
  return t;
}

Timing Timing::Sum(const std::vector<const Timing*>& parts) {
  std::vector<double> total(parts.empty() ? 0 : parts.front()->ms.size(), 0.0);
  for (const Timing* p : parts)
    for (size_t i = 0; i < total.size() && i < p->ms.size(); ++i) total[i] += p->ms[i];
  return FromSamples(std::move(total));
}

std::vector<Timing> TimeInterleaved(const std::vector<Variant>& variants, int reps, int warmup, Device device) {
  using Clock = std::chrono::steady_clock;
  for (int w = 0; w < warmup; ++w) {
    for (const Variant& v : variants) v.run();
  }
  Synchronize(device);
  std::vector<std::vector<double>> samples(variants.size());
  for (int r = 0; r < reps; ++r) {
    for (size_t i = 0; i < variants.size(); ++i) {
      const auto start = Clock::now();
      variants[i].run();
      Synchronize(device);
      samples[i].push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    }
  }
  std::vector<Timing> timings;
  for (auto& s : samples) timings.push_back(Timing::FromSamples(std::move(s)));
  return timings;
}

void Row::Compare(double reference_ms, std::optional<double> ideal_ratio) {
  speedup = reference_ms / timing.median;
  ideal = ideal_ratio;
  if (ideal_ratio) efficiency = *speedup / *ideal_ratio;
}

void ConfigureThreads(int threads) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int n = threads > 0 ? threads : cores;
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
  std::printf("threads: OpenMP %d, OpenBLAS %d (%d cores)\n", omp_get_max_threads(), openblas_get_num_threads(), cores);
}

void PrintTable(const std::string& title, const std::vector<Row>& rows) {
  size_t width = 4;
  bool vs_pytorch = false;
  for (const Row& r : rows) {
    width = std::max(width, r.name.size());
    vs_pytorch = vs_pytorch || r.vs_pytorch.has_value();
  }
  std::printf("\n%s\n", title.c_str());
  std::printf("%-*s %9s %9s %9s %8s %6s %6s %6s%s\n", static_cast<int>(width), "name", "median", "min", "max",
              "speedup", "ideal", "eff", "target", vs_pytorch ? "  vs_pt" : "");
  for (const Row& r : rows) {
    std::printf("%-*s %9.3f %9.3f %9.3f %8s %6s %6s %6s", static_cast<int>(width), r.name.c_str(), r.timing.median,
                r.timing.min, r.timing.max, Fixed(r.speedup, 2).c_str(), Fixed(r.ideal, 2).c_str(),
                Fixed(r.efficiency, 2).c_str(), Fixed(r.target, 2).c_str());
    if (vs_pytorch) std::printf(" %6s", Fixed(r.vs_pytorch, 2).c_str());
    std::printf("\n");
  }
  std::fflush(stdout);
}

std::string JsonEscape(const std::string& s) {
  std::string out;
  out.reserve(s.size() + 2);
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  return out;
}

bool WriteJson(const std::string& path, const std::string& verb, const Options& options, const std::vector<Row>& rows,
               std::string* error) {
  std::ostringstream os;
  auto str = [](const std::string& s) { return "\"" + JsonEscape(s) + "\""; };
  os << "{\n  \"machine\": {\n";
  os << "    \"cpu\": " << str(CpuModel()) << ",\n";
  os << "    \"cores\": " << std::thread::hardware_concurrency() << ",\n";
  os << "    \"threads\": " << omp_get_max_threads() << ",\n";
  os << "    \"openblas_threads\": " << openblas_get_num_threads() << ",\n";
  os << "    \"openblas\": " << str(openblas_get_config()) << ",\n";
  os << "    \"build_type\": " << str(SIEVE_BUILD_TYPE) << ",\n";
  os << "    \"cuda_build\": " << (CudaCompiled() ? "true" : "false") << ",\n";
  os << "    \"device\": " << str(options.device.ToString()) << ",\n";
  if (options.device.is_cuda()) os << "    \"gpu\": " << str(GpuName(options.device)) << ",\n";
  os << "    \"date\": " << str(UtcNow()) << "\n  },\n";
  os << "  \"verb\": " << str(verb) << ",\n";
  os << "  \"command\": " << str(options.command_line) << ",\n";
  os << "  \"rows\": [";
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    os << (i ? ",\n" : "\n") << "    {\"name\": " << str(r.name) << ", \"ms_median\": " << JsonNumber(r.timing.median)
       << ", \"ms_min\": " << JsonNumber(r.timing.min) << ", \"ms_max\": " << JsonNumber(r.timing.max);
    auto optional = [&](const char* key, std::optional<double> v) {
      if (v) os << ", \"" << key << "\": " << JsonNumber(*v);
    };
    optional("speedup", r.speedup);
    optional("ideal", r.ideal);
    optional("efficiency", r.efficiency);
    optional("target", r.target);
    optional("vs_pytorch", r.vs_pytorch);
    for (const auto& [key, value] : r.text) os << ", " << str(key) << ": " << str(value);
    for (const auto& [key, value] : r.numbers) os << ", " << str(key) << ": " << JsonNumber(value);
    os << ", \"reps\": " << r.timing.ms.size() << "}";
  }
  os << "\n  ]\n}\n";
  std::ofstream out(path);
  if (!out) {
    *error = "cannot open " + path + " for writing";
    return false;
  }
  out << os.str();
  out.close();
  if (!out) {
    *error = "failed writing " + path;
    return false;
  }
  return true;
}

int FinishReport(const std::string& verb, const Options& options, const std::vector<Row>& rows) {
  if (options.json_path.empty()) return 0;
  std::string error;
  if (!WriteJson(options.json_path, verb, options, rows, &error)) {
    std::fprintf(stderr, "sieve-bench %s: %s\n", verb.c_str(), error.c_str());
    return 1;
  }
  std::printf("\nwrote %s\n", options.json_path.c_str());
  return 0;
}

void StepLog::Record(double wall_ms, const runtime::StepResult& result) {
  step_ms.push_back(wall_ms);
  passes_ms.push_back(result.passes_ms);
  graph_ms.push_back(result.graph_ms);
  update_ms.push_back(result.update_ms);
  executed_flops += static_cast<double>(result.executed_flops);
  dense_flops += static_cast<double>(result.dense_flops);
  last_loss = result.loss;
}

}  // namespace sieve::bench
