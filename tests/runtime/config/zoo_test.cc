// Tests of the model zoo (models/, SPEC section 4, issue 7), so that no zoo file can rot: every solver
// file under models/ trains a few iterations and runs a short test pass through runtime::RunTrainLoop,
// the loop of `sieve train`, with its snapshot and logs in a temporary folder, and its losses are finite;
// its test pass covers the whole test split; a variant solver (solver_<variant>.prototxt) differs from its
// folder's solver.prototxt only in the net and the snapshot prefix; every net file of a folder has the
// parameter names and shapes of the folder's net.prototxt, so weights move between the variants. The
// files are found by listing models/, so a new folder or variant is covered without editing this test.
//
// The language models read the real Jane Austen corpus ($SIEVE_DATA_DIR/austen, else data/austen of the
// source tree): when it is missing their sections fail, naming `bash tools/data/prepare_austen.sh`
// (`tools/dev.sh test` runs it first). The Fashion-MNIST models read the Debian package
// dataset-fashion-mnist (tools/setup.sh), as `sieve train` does.
//
// Not here: the loaders' checks and messages (net_config_test.cc, solver_config_test.cc), the loop's
// schedule (tests/runtime/train_loop_test.cc), the accuracy the files reach (each folder's README.md).
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "graph/lower.h"
#include "runtime/config/net_config.h"
#include "runtime/config/solver_config.h"
#include "runtime/data/text_corpus.h"
#include "runtime/train_log.h"
#include "runtime/train_loop.h"
#include "runtime/trainer.h"
#include "tests/testing/temp_dir.h"

namespace sieve::runtime {
namespace {

namespace fs = std::filesystem;

using testing::TempDir;

const fs::path kModels = fs::path(SIEVE_SOURCE_DIR) / "models";

// Iterations each solver trains and batches of its test pass: enough for the solver's update, the
// dropout patterns of two iterations and a recurrent state carried from one batch to the next, few
// enough that the whole zoo trains in seconds (the medium LM's 10,000 x 650 output layer is the
// heaviest step).
constexpr int64_t kIterations = 2;
constexpr int64_t kTestBatches = 2;

// The prototxt files of one folder under models/, each list sorted: solver*.prototxt are solvers, the
// others nets.
struct ZooFolder {
  fs::path path;
  std::vector<fs::path> nets, solvers;
};

std::vector<ZooFolder> ZooFolders() {
  std::vector<ZooFolder> folders;
  for (const fs::directory_entry& entry : fs::directory_iterator(kModels)) {
    if (!entry.is_directory()) continue;
    ZooFolder folder{.path = entry.path()};
    for (const fs::directory_entry& file : fs::directory_iterator(entry.path())) {
      if (!file.is_regular_file() || file.path().extension() != ".prototxt") continue;
      const bool solver = file.path().filename().string().rfind("solver", 0) == 0;
      (solver ? folder.solvers : folder.nets).push_back(file.path());
    }
    std::sort(folder.nets.begin(), folder.nets.end());
    std::sort(folder.solvers.begin(), folder.solvers.end());
    folders.push_back(std::move(folder));
  }
  std::sort(folders.begin(), folders.end(), [](const ZooFolder& a, const ZooFolder& b) { return a.path < b.path; });
  return folders;
}

// The value of `value`; a failed test naming `what` and the error otherwise.
template <typename T>
T ValueOf(StatusOr<T> value, const std::string& what) {
  if (!value.ok()) FAIL(what << ": " << value.status().ToString());
  return std::move(value).value();
}

// "dense" of net_dense.prototxt or solver_dense.prototxt; "" of net.prototxt and solver.prototxt.
std::string VariantOf(const fs::path& file) {
  const std::string stem = file.stem().string();
  const size_t underscore = stem.find('_');
  return underscore == std::string::npos ? "" : stem.substr(underscore + 1);
}

// The prepared Austen corpus: $SIEVE_DATA_DIR/austen when SIEVE_DATA_DIR is set, else data/austen of
// this source tree (AustenDefaultDir() is relative to the working folder, the build folder under ctest).
std::string AustenDir() {
  const char* root = std::getenv("SIEVE_DATA_DIR");
  if (root != nullptr && *root != '\0') return AustenDefaultDir();
  return (fs::path(SIEVE_SOURCE_DIR) / "data" / "austen").string();
}

// Points a net's text corpus source without a folder at AustenDir(), which must hold a prepared corpus.
void UsePreparedCorpus(NetConfig& net) {
  if (net.source.kind != DataSourceKind::kTextCorpus || !net.source.dir.empty()) return;
  net.source.dir = AustenDir();
  if (!fs::exists(fs::path(net.source.dir) / "manifest.tsv")) {
    FAIL("the Jane Austen corpus is not prepared in " << net.source.dir << " (net '" << net.name
                                                      << "'): run `bash tools/data/prepare_austen.sh` "
                                                         "(tools/dev.sh test does it before the tests)");
  }
}

// A solver file's model as `sieve train` reads it (tools/sieve/cli.cc): the solver, both phases of its
// net and the trainer options they give.
struct ZooModel {
  SolverFile solver;
  NetConfig train_net, test_net;
  TrainerOptions options;
};

ZooModel ReadZooModel(const fs::path& solver_path) {
  ZooModel model;
  model.solver = ValueOf(LoadSolverFile(solver_path.string()), "the solver");
  model.train_net = ValueOf(LoadNetConfig(model.solver.net, NetPhase::kTrain), "the TRAIN net");
  model.test_net = ValueOf(LoadNetConfig(model.solver.net, NetPhase::kTest), "the TEST net");
  // The zoo states its batch sizes; the CLI's fallback for a net without one is not exercised here.
  REQUIRE(model.train_net.batch_size > 0);
  TrainerOptions& options = model.options;
  options.batch_size = model.train_net.batch_size;
  options.eval_batch_size = model.test_net.batch_size > 0 ? model.test_net.batch_size : options.batch_size;
  options.solver = model.solver.solver;
  options.device = model.solver.device;
  options.seed = model.solver.random_seed;
  options.carry_state = IsStatefulSource(model.train_net);
  options.search = model.solver.pattern_search;
  UsePreparedCorpus(model.train_net);
  UsePreparedCorpus(model.test_net);
  return model;
}

std::unique_ptr<BatchSource> OpenSource(const NetConfig& net, NetPhase phase, int64_t batch_size, uint64_t seed) {
  return ValueOf(OpenNetSource(net, phase, batch_size, seed), std::string("the ") + NetPhaseName(phase) + " data");
}

// Everything of a solver file but its net and snapshot prefix, one field a line.
std::string Schedule(const SolverFile& s) {
  std::ostringstream out;
  const auto field = [&out](const char* name, const auto& value) { out << name << " " << value << "\n"; };
  field("max_iter", s.max_iter);
  field("test_iter", s.test_iter);
  field("test_interval", s.test_interval);
  field("test_initialization", s.test_initialization);
  field("display", s.display);
  field("snapshot", s.snapshot);
  field("snapshot_after_train", s.snapshot_after_train);
  field("random_seed", s.random_seed);
  field("device", s.device.ToString());
  const SolverConfig& solver = s.solver;
  field("type", static_cast<int>(solver.type));
  field("lr_policy", static_cast<int>(solver.lr.type));
  field("base_lr", solver.lr.base_lr);
  field("gamma", solver.lr.gamma);
  field("power", solver.lr.power);
  field("stepsize", solver.lr.stepsize);
  field("lr.max_iter", solver.lr.max_iter);
  for (int64_t step : solver.lr.stepvalue) field("stepvalue", step);
  field("momentum", solver.momentum);
  field("momentum2", solver.momentum2);
  field("delta", solver.delta);
  field("weight_decay", solver.weight_decay);
  field("clip_gradients", solver.clip_gradients);
  const graph::SearchOptions& search = s.pattern_search;
  field("pattern_search.rate_weight", search.rate_weight);
  field("pattern_search.codrop_weight", search.codrop_weight);
  field("pattern_search.spread_weight", search.spread_weight);
  field("pattern_search.entropy_weight", search.entropy_weight);
  field("pattern_search.max_distance", search.max_distance);
  field("pattern_search.steps", search.steps);
  field("pattern_search.learning_rate", search.learning_rate);
  field("pattern_search.beta1", search.beta1);
  field("pattern_search.beta2", search.beta2);
  field("pattern_search.epsilon", search.epsilon);
  return out.str();
}

// The parameters of a net file's TRAIN phase, in registration order: "name [shape]" each.
std::vector<std::string> Parameters(const fs::path& net_path) {
  const NetConfig net = ValueOf(LoadNetConfig(net_path.string(), NetPhase::kTrain), net_path.string());
  const graph::LoweredNet lowered =
      ValueOf(graph::Lower(net.network, {.batch = 1, .training = true}), "lowering " + net_path.string());
  std::vector<std::string> params;
  for (const graph::ParamDecl& param : lowered.params) params.push_back(param.name + " " + ShapeToString(param.shape));
  return params;
}

TEST_CASE("every zoo folder has its net and solver and README and a solver for each variant net", "[zoo]") {
  const std::vector<ZooFolder> folders = ZooFolders();
  REQUIRE_FALSE(folders.empty());
  for (const ZooFolder& folder : folders) {
    INFO(folder.path.string());
    CHECK(fs::is_regular_file(folder.path / "net.prototxt"));
    CHECK(fs::is_regular_file(folder.path / "solver.prototxt"));
    CHECK(fs::is_regular_file(folder.path / "README.md"));
    std::vector<std::string> net_variants, solver_variants;
    for (const fs::path& net : folder.nets) net_variants.push_back(VariantOf(net));
    for (const fs::path& solver : folder.solvers) solver_variants.push_back(VariantOf(solver));
    CHECK(net_variants == solver_variants);  // both sorted: net_<v> and solver_<v> come in pairs
  }
}

TEST_CASE("a zoo variant's solver differs from its folder's solver.prototxt only in net and snapshot prefix", "[zoo]") {
  int variants = 0;
  for (const ZooFolder& folder : ZooFolders()) {
    const fs::path reference_path = folder.path / "solver.prototxt";
    if (!fs::exists(reference_path)) continue;  // the layout test reports it
    const SolverFile reference = ValueOf(LoadSolverFile(reference_path.string()), reference_path.string());
    const std::string name = folder.path.filename().string();
    CHECK(fs::path(reference.net) == folder.path / "net.prototxt");
    CHECK(fs::path(reference.snapshot_prefix) == folder.path / "snapshots" / name);
    for (const fs::path& path : folder.solvers) {
      const std::string variant = VariantOf(path);
      if (variant.empty()) continue;
      const SolverFile solver = ValueOf(LoadSolverFile(path.string()), path.string());
      INFO(path.string());
      CHECK(fs::path(solver.net) == folder.path / ("net_" + variant + ".prototxt"));
      CHECK(fs::path(solver.snapshot_prefix) == folder.path / "snapshots" / (name + "_" + variant));
      CHECK(Schedule(solver) == Schedule(reference));
      ++variants;
    }
  }
  CHECK(variants > 0);
}

TEST_CASE("every net file of a zoo folder has the parameter names and shapes of its net.prototxt", "[zoo]") {
  int compared = 0;
  for (const ZooFolder& folder : ZooFolders()) {
    const fs::path reference_path = folder.path / "net.prototxt";
    if (!fs::exists(reference_path)) continue;  // the layout test reports it
    const std::vector<std::string> reference = Parameters(reference_path);
    INFO(reference_path.string());
    CHECK_FALSE(reference.empty());
    for (const fs::path& path : folder.nets) {
      if (path == reference_path) continue;
      INFO(path.string());
      CHECK(Parameters(path) == reference);
      ++compared;
    }
  }
  CHECK(compared > 0);
}

TEST_CASE("every zoo solver trains and tests through the loop of sieve train", "[zoo]") {
  std::vector<fs::path> solvers;
  for (const ZooFolder& folder : ZooFolders())
    solvers.insert(solvers.end(), folder.solvers.begin(), folder.solvers.end());
  REQUIRE_FALSE(solvers.empty());
  for (const fs::path& path : solvers) {
    DYNAMIC_SECTION(path.parent_path().filename().string() << "/" << path.filename().string()) {
      ZooModel model = ReadZooModel(path);
      const uint64_t seed = model.solver.random_seed;
      std::unique_ptr<BatchSource> train =
          OpenSource(model.train_net, NetPhase::kTrain, model.options.batch_size, seed);
      std::unique_ptr<BatchSource> test =
          OpenSource(model.test_net, NetPhase::kTest, model.options.eval_batch_size, seed);
      // The file's own test pass covers every example of the test split.
      if (model.solver.test_interval > 0) CHECK(model.solver.test_iter >= test->batches_per_epoch());

      std::unique_ptr<Trainer> trainer =
          ValueOf(Trainer::Create(model.train_net.network, model.options), "the trainer");

      TempDir dir;
      TrainLoopOptions loop;
      loop.solver = model.solver;
      loop.solver.max_iter = kIterations;
      loop.solver.test_iter = kTestBatches;  // one test pass, at the end
      loop.solver.test_initialization = false;
      loop.solver.display = 1;  // every iteration's display line (and sensitivity histograms)
      loop.solver.snapshot = 0;
      loop.solver.snapshot_prefix = (dir.path / "snapshots" / path.stem()).string();
      std::vector<double> losses;
      loop.on_iteration = [&losses](int64_t, const StepResult& step) { losses.push_back(step.loss); };
      std::unique_ptr<TrainLog> log = ValueOf(TrainLog::Open({.console = nullptr,
                                                              .log_path = (dir.path / "train.log").string(),
                                                              .metrics_path = (dir.path / "metrics.jsonl").string()}),
                                              "the log");
      const TrainLoopResult result = ValueOf(RunTrainLoop(*trainer, *train, test.get(), loop, *log), "training");

      CHECK(result.iteration == kIterations);
      REQUIRE(losses.size() == static_cast<size_t>(kIterations));
      for (double loss : losses) {
        CHECK(std::isfinite(loss));
        CHECK(loss > 0.0);
      }
      REQUIRE(result.test.has_value());
      CHECK(std::isfinite(result.test->loss));
      CHECK(result.test->examples > 0);
      CHECK(fs::exists(result.last_snapshot));
      CHECK(fs::file_size(dir.path / "metrics.jsonl") > 0);
    }
  }
}

}  // namespace
}  // namespace sieve::runtime
