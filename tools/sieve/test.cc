// `sieve test`: evaluates trained weights (a snapshot or a weights file) on the TEST data of a net
// file, dense (no dropout), and prints the accuracy and loss.
#include <cstdio>

#include "runtime/checkpoint.h"
#include "runtime/train_loop.h"
#include "tools/sieve/cli.h"
#include "tools/sieve/verbs.h"

namespace sieve::cli {
namespace {

int RunTest(const Verb& verb, const Args& args) {
  StatusOr<Device> device = DeviceFromArgs(args, Device::CPU());
  if (!device.ok()) return UsageError(verb, UserMessage(device.status()));
  int64_t iterations = 0;
  if (args.Has("iterations")) {
    StatusOr<int64_t> n = args.GetInt("iterations", 1, int64_t{1} << 31);
    if (!n.ok()) return UsageError(verb, UserMessage(n.status()));
    iterations = *n;
  }
  StatusOr<Model> model = ReadModel(args.Get("model"), DefaultSolver(), *device);
  if (!model.ok()) return Fail(verb, model.status());
  StatusOr<std::unique_ptr<runtime::BatchSource>> test =
      runtime::OpenNetSource(model->test_net, runtime::NetPhase::kTest, model->options.eval_batch_size, 1);
  if (!test.ok()) return Fail(verb, test.status());
  if (Status st = CreateTrainer(*model); !st.ok()) return Fail(verb, st);
  if (Status st = runtime::LoadWeightsFromAny(*model->trainer, args.Get("weights")); !st.ok()) return Fail(verb, st);
  StatusOr<std::unique_ptr<runtime::BatchSource>> batches =
      runtime::FirstBatches(**test, iterations > 0 ? iterations : (*test)->batches_per_epoch());
  if (!batches.ok()) return Fail(verb, batches.status());
  StatusOr<runtime::EvalResult> result = model->trainer->Evaluate(**batches);
  if (!result.ok()) return Fail(verb, result.status());
  std::printf("%s on %lld test examples (%lld batches of %lld): accuracy = %.4f, loss = %.4f\n",
              args.Get("weights").c_str(), static_cast<long long>(result->examples),
              static_cast<long long>((*batches)->batches_per_epoch()),
              static_cast<long long>(model->options.eval_batch_size), result->accuracy, result->loss);
  return kExitOk;
}

}  // namespace

const Verb kTestVerb{
    .name = "test",
    .summary = "evaluate weights on a net's test data (dense, no dropout)",
    .usage = "sieve test --model FILE --weights FILE [--iterations N] [--gpu N]",
    .description =
        "Reads the net for both phases: the TRAIN network (evaluated without dropout) holds the weights,\n"
        "the TEST phase gives the batch size and the data. --iterations N evaluates the first N test\n"
        "batches; without it, the whole test split.",
    .flags = {{"model", "FILE", "the net file (protobuf text; docs/model_files.md)"},
              {"weights", "FILE", "a snapshot (.sievestate) or weights file (Trainer::SaveWeights)"},
              {"iterations", "N", "test batches (default: the whole test split)"},
              {"gpu", "N", "evaluate on CUDA device N"}},
    .required = {"model", "weights"},
    .run = RunTest};

}  // namespace sieve::cli
