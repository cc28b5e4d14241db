// Tests of the Trainer and the Sequential builder: training separates Gaussian blobs; evaluation
// counts every example once whatever the batch size (padding is ignored); weights round-trip
// through a file and bad files are refused with the path and the parameter; the same seed gives
// the same losses; builder and trainer errors name what is wrong.
#include "runtime/trainer.h"

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "graph/sequential.h"

namespace sieve::runtime {
namespace {

// `n` examples of `classes` Gaussian blobs in `dim` dimensions (means N(0, 1), noise N(0, 0.5^2)).
Dataset Blobs(int64_t n, int64_t dim, int64_t classes, uint32_t seed) {
  std::mt19937 means_rng(99);  // the same class means for every split
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> means(static_cast<size_t>(classes * dim));
  for (float& m : means) m = normal(means_rng);
  std::mt19937 rng(seed);
  Tensor features = Tensor::Empty({n, dim});
  Tensor labels = Tensor::Empty({n}, DType::kInt32);
  for (int64_t i = 0; i < n; ++i) {
    const auto c = static_cast<int32_t>(rng() % static_cast<uint32_t>(classes));
    labels.data<int32_t>()[i] = c;
    for (int64_t d = 0; d < dim; ++d) features.data<float>()[i * dim + d] = means[c * dim + d] + 0.5f * normal(rng);
  }
  return *Dataset::Create(features, labels, classes);
}

graph::Network SmallMlp(double dropout = 0.2) {
  graph::Sequential net({16});
  net.Add(graph::FullyConnected(32)).Add(graph::ReLU()).Add(graph::Dropout(dropout)).Add(graph::FullyConnected(4));
  return *net.Build();
}

TrainerOptions SmallOptions() {
  TrainerOptions options;
  options.batch_size = 32;
  options.solver.lr.base_lr = 0.05f;
  options.solver.momentum = 0.9f;
  options.seed = 7;
  return options;
}

TEST_CASE("Sequential names layers by kind and adds the loss and accuracy", "[runtime][trainer]") {
  graph::Sequential net({1, 8, 8});
  net.Add(graph::Conv2d(4, 3, 1, 1)).Add(graph::ReLU()).Add(graph::MaxPool(2, 2)).Add(graph::FullyConnected(3), "head");
  auto built = net.Build();
  REQUIRE(built.ok());
  std::vector<std::string> names;
  for (const graph::Layer& layer : built->layers()) names.push_back(layer.name);
  CHECK(names == std::vector<std::string>{"data", "label", "conv1", "relu1", "pool1", "head", "loss", "accuracy"});
  CHECK(built->layers()[5].inputs == std::vector<std::string>{"pool1"});

  CHECK_THAT(graph::Sequential({4}).Build().status().message(), Catch::Contains("at least one layer"));
  graph::Sequential bad({4});
  bad.Add(graph::SoftmaxCrossEntropySpec{});
  CHECK_THAT(bad.Build().status().message(), Catch::Contains("adds the input, label, loss and accuracy"));
}

TEST_CASE("Trainer separates Gaussian blobs and evaluation counts every example", "[runtime][trainer]") {
  const Dataset train = Blobs(640, 16, 4, 1);
  const Dataset test = Blobs(100, 16, 4, 2);  // not a multiple of the batch: the last batch is padded
  auto trainer = Trainer::Create(SmallMlp(), SmallOptions());
  REQUIRE(trainer.ok());
  auto before = (*trainer)->Evaluate(test);
  REQUIRE(before.ok());
  auto reports = (*trainer)->Fit(train, {.epochs = 3, .eval = &test, .display = 0});
  REQUIRE(reports.ok());
  REQUIRE(reports->size() == 3);
  CHECK((*trainer)->iteration() == 3 * (640 / 32));
  CHECK(reports->back().train_loss < reports->front().train_loss);
  const EvalResult& after = *reports->back().eval;
  CHECK(after.examples == 100);
  CHECK(after.accuracy > 0.9);
  CHECK(after.loss < before->loss);

  // The same weights evaluated in one batch of 100 give the same numbers: padded rows count nothing.
  const std::string path = (std::filesystem::temp_directory_path() / "sieve_trainer_test.weights").string();
  REQUIRE((*trainer)->SaveWeights(path).ok());
  TrainerOptions whole = SmallOptions();
  whole.eval_batch_size = 100;
  auto other = Trainer::Create(SmallMlp(), whole);
  REQUIRE(other.ok());
  REQUIRE((*other)->LoadWeights(path).ok());
  auto again = (*other)->Evaluate(test);
  REQUIRE(again.ok());
  CHECK(again->examples == 100);
  CHECK(again->accuracy == after.accuracy);
  CHECK(again->loss == Approx(after.loss).epsilon(1e-5));
  std::remove(path.c_str());
}

TEST_CASE("Trainer steps are reproducible from the seed", "[runtime][trainer]") {
  const Dataset train = Blobs(64, 16, 4, 3);
  Tensor x = train.features().Slice(0, 0, 32);
  Tensor y = train.labels().Slice(0, 0, 32);
  std::vector<double> losses[2];
  for (auto& run : losses) {
    auto trainer = Trainer::Create(SmallMlp(0.5), SmallOptions());
    REQUIRE(trainer.ok());
    for (int i = 0; i < 4; ++i) run.push_back((*trainer)->Step(x, y)->loss);
  }
  CHECK(losses[0] == losses[1]);
  CHECK(losses[0].back() < losses[0].front());
}

TEST_CASE("Weight files: bad files are refused naming the path, and a failed save changes nothing",
          "[runtime][trainer]") {
  auto trainer = Trainer::Create(SmallMlp(), SmallOptions());
  REQUIRE(trainer.ok());
  const auto dir = std::filesystem::temp_directory_path() / "sieve_weights_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string good = (dir / "good.weights").string();
  REQUIRE((*trainer)->SaveWeights(good).ok());

  SECTION("missing file") {
    CHECK_THAT((*trainer)->LoadWeights((dir / "none").string()).message(), Catch::Contains("none"));
  }
  SECTION("a flipped byte fails the checksum") {
    std::fstream f(good, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(40);
    f.put('\x7f');
    f.close();
    CHECK_THAT((*trainer)->LoadWeights(good).message(), Catch::Contains("good.weights") && Catch::Contains("corrupt"));
  }
  SECTION("another network's shapes are named") {
    graph::Sequential wider({16});
    wider.Add(graph::FullyConnected(48)).Add(graph::ReLU()).Add(graph::FullyConnected(4));
    auto other = Trainer::Create(*wider.Build(), SmallOptions());
    REQUIRE(other.ok());
    CHECK_THAT((*other)->LoadWeights(good).message(),
               Catch::Contains("fc1.w") && Catch::Contains("[32, 16]") && Catch::Contains("[48, 16]"));
  }
  SECTION("saving onto a directory fails and leaves it and no temporary behind") {
    const auto target = dir / "occupied";
    std::filesystem::create_directories(target / "inside");
    CHECK_THAT((*trainer)->SaveWeights(target.string()).message(), Catch::Contains("is unchanged"));
    CHECK(std::filesystem::exists(target / "inside"));
    CHECK_FALSE(std::filesystem::exists(target.string() + ".tmp"));
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("Trainer errors name the network's problem", "[runtime][trainer]") {
  graph::Network no_loss;
  no_loss.Add({"data", graph::InputSpec{{4}}, {}, {"data"}});
  no_loss.Add({"label", graph::LabelSpec{}, {}, {"label"}});
  no_loss.Add({"fc", graph::FullyConnected(2), {"data"}, {"fc"}});
  CHECK_THAT(Trainer::Create(no_loss, SmallOptions()).status().message(), Catch::Contains("no loss layer"));

  auto trainer = Trainer::Create(SmallMlp(), SmallOptions());
  REQUIRE(trainer.ok());
  const Dataset wrong = Blobs(40, 8, 4, 4);
  CHECK_THAT((*trainer)->Evaluate(wrong).status().message(), Catch::Contains("8 features") && Catch::Contains("16"));
  CHECK_THAT((*trainer)->Step(wrong.features().Slice(0, 0, 32), wrong.labels().Slice(0, 0, 32)).status().message(),
             Catch::Contains("do not fit the input"));
}

}  // namespace
}  // namespace sieve::runtime
