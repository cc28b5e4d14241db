// Trains the 784-2048-2048-10 MLP with dropout on Fashion-MNIST through the C++ API: the
// README's default training job, and the shortest complete example of the Sequential builder and
// the Trainer (docs/api.md walks through it).
//
// Usage: train_fashion_mlp [--epochs N] [--batch B] [--lr LR] [--dropout P] [--seed S]
//                          [--save PATH] [--data DIR]
// The data comes from the Debian package dataset-fashion-mnist (tools/setup.sh installs it), or
// from --data / $SIEVE_DATA_DIR.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "framework/logging.h"
#include "graph/sequential.h"
#include "runtime/data/dataset.h"
#include "runtime/trainer.h"

namespace sieve {
namespace {

struct Args {
  int64_t epochs = 20;
  int64_t batch = 128;
  float lr = 0.01f;
  double dropout = 0.5;
  uint64_t seed = 1;
  std::string save;
  std::string data;
};

int Usage(const char* error) {
  std::fprintf(stderr,
               "%s%susage: train_fashion_mlp [--epochs N] [--batch B] [--lr LR] [--dropout P] [--seed S] "
               "[--save PATH] [--data DIR]\n",
               error, *error ? "\n" : "");
  return 2;
}

int Run(const Args& args) {
  auto train = runtime::LoadFashionMnist(args.data, runtime::Split::kTrain);
  auto test = runtime::LoadFashionMnist(args.data, runtime::Split::kTest);
  if (!train.ok() || !test.ok()) {
    std::fprintf(stderr, "train_fashion_mlp: %s\n", (train.ok() ? test.status() : train.status()).ToString().c_str());
    return 1;
  }

  graph::Sequential mlp({784});
  mlp.Add(graph::FullyConnected(2048)).Add(graph::ReLU()).Add(graph::Dropout(args.dropout))
      .Add(graph::FullyConnected(2048)).Add(graph::ReLU()).Add(graph::Dropout(args.dropout))
      .Add(graph::FullyConnected(10));
  auto network = mlp.Build();

  runtime::TrainerOptions options;
  options.batch_size = args.batch;
  options.seed = args.seed;
  options.solver.type = ops::SolverType::kSGD;
  options.solver.lr.base_lr = args.lr;
  options.solver.momentum = 0.9f;
  options.solver.weight_decay = 5e-4f;
  auto trainer = network.ok() ? runtime::Trainer::Create(*network, options) : network.status();
  if (!trainer.ok()) {
    std::fprintf(stderr, "train_fashion_mlp: %s\n", trainer.status().ToString().c_str());
    return 1;
  }
  auto reports = (*trainer)->Fit(*train, {.epochs = args.epochs, .eval = &*test, .display = 100});
  if (!reports.ok()) {
    std::fprintf(stderr, "train_fashion_mlp: %s\n", reports.status().ToString().c_str());
    return 1;
  }
  double seconds = 0.0;
  for (const runtime::EpochReport& r : *reports) seconds += r.seconds;
  const runtime::EpochReport& last = reports->back();
  std::printf("train_fashion_mlp: %lld epochs in %.1f s of training; test accuracy %.4f, test loss %.4f\n",
              static_cast<long long>(last.epoch), seconds, last.eval->accuracy, last.eval->loss);
  if (!args.save.empty()) {
    if (Status st = (*trainer)->SaveWeights(args.save); !st.ok()) {
      std::fprintf(stderr, "train_fashion_mlp: %s\n", st.ToString().c_str());
      return 1;
    }
    std::printf("train_fashion_mlp: weights saved to %s\n", args.save.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace sieve

int main(int argc, char** argv) {
  sieve::Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") return sieve::Usage("");
    if (i + 1 >= argc) return sieve::Usage(("missing value after " + flag).c_str());
    const char* value = argv[++i];
    char* end = nullptr;
    if (flag == "--epochs") {
      args.epochs = std::strtoll(value, &end, 10);
    } else if (flag == "--batch") {
      args.batch = std::strtoll(value, &end, 10);
    } else if (flag == "--lr") {
      args.lr = std::strtof(value, &end);
    } else if (flag == "--dropout") {
      args.dropout = std::strtod(value, &end);
    } else if (flag == "--seed") {
      args.seed = std::strtoull(value, &end, 10);
    } else if (flag == "--save") {
      args.save = value;
      continue;
    } else if (flag == "--data") {
      args.data = value;
      continue;
    } else {
      return sieve::Usage(("unknown flag " + flag).c_str());
    }
    if (end == value || *end != '\0') return sieve::Usage(("bad value '" + std::string(value) + "' for " + flag).c_str());
  }
  return sieve::Run(args);
}
