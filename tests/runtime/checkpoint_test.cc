// Tests of snapshots (runtime/checkpoint.h): a run restored into a new Trainer and a new source from a
// snapshot taken mid-epoch continues bit-identically to the run that never stopped (row ARD with Bernoulli
// dropout, unit shuffling and deferred updates under SGD-momentum with a step policy; tile ARD under Adam; an
// LSTM language model that carries its state), through Step as the CLI drives it and through Fit; the
// atomic write under a simulated crash (a child killed with SIGKILL halfway through the temporary file);
// precise errors for every corrupted section, truncation, a weights file, another network, another solver and
// a newer version, with the trainer unchanged; and weights loaded from either kind of file.
#include "runtime/checkpoint.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "framework/file_io.h"
#include "graph/sequential.h"
#include "runtime/data/batch_loader.h"
#include "runtime/data/token_stream.h"
#include "runtime/trainer.h"
#include "tests/testing/random_tensors.h"

namespace sieve::runtime {
namespace {

constexpr int64_t kBatch = 8, kIn = 12, kClasses = 3, kBatchesPerEpoch = 5;

// A scratch directory removed at the end of the test.
struct TempDir {
  TempDir() {
    path = std::filesystem::temp_directory_path() / ("sieve_checkpoint_" + std::to_string(getpid()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
  std::filesystem::path path;
};

enum class Config { kRowSgd, kTileAdam, kLstm };

graph::Network Build(graph::Sequential& net) {
  auto built = net.Build();
  INFO(built.status().ToString());
  REQUIRE(built.ok());
  return *built;
}

// kIn -> hidden1 -> 30 -> 3: row ARD (searched, units shuffled every epoch) then Bernoulli dropout; or tile
// ARD on both.
graph::Network Mlp(bool tile, int64_t hidden1 = 40) {
  graph::Sequential mlp({kIn});
  graph::DropoutSpec row = graph::RowDropout(0.5);
  row.shuffle_every_epochs = 1;
  mlp.Add(graph::FullyConnected(hidden1)).Add(graph::ReLU()).Add(tile ? graph::TileDropout(0.5, 4, 4) : row);
  mlp.Add(graph::FullyConnected(30)).Add(graph::ReLU()).Add(tile ? graph::TileDropout(0.3, 4, 4) : graph::Dropout(0.3));
  mlp.Add(graph::FullyConnected(kClasses));
  return Build(mlp);
}

constexpr int64_t kVocab = 11, kSteps = 5, kStreams = 4;

// Embedding -> LSTM -> per-step classifier over token windows.
graph::Network LanguageModel() {
  graph::Sequential lm({kSteps}, DType::kInt32, {kSteps});
  graph::FullyConnectedSpec per_step = graph::FullyConnected(kVocab);
  per_step.axis = 2;
  lm.Add(graph::Embedding(kVocab, 8)).Add(graph::Lstm(12, 1, true)).Add(per_step);
  return Build(lm);
}

graph::Network NetworkOf(Config config) {
  return config == Config::kLstm ? LanguageModel() : Mlp(config == Config::kTileAdam);
}

TrainerOptions OptionsOf(Config config) {
  TrainerOptions options{.batch_size = config == Config::kLstm ? kStreams : kBatch, .seed = 17};
  if (config == Config::kRowSgd) {
    options.solver.type = ops::SolverType::kSGD;
    options.solver.momentum = 0.9f;
    options.solver.weight_decay = 0.01f;
    options.solver.lr = {.type = LrPolicyType::kStep, .base_lr = 0.1f, .gamma = 0.5f, .stepsize = 4};
    options.defer_updates = DeferMode::kReplay;
  } else {
    options.solver.type = ops::SolverType::kAdam;
    options.solver.lr.base_lr = 0.01f;
    options.defer_updates = config == Config::kTileAdam ? DeferMode::kReplay : DeferMode::kOff;
    options.carry_state = config == Config::kLstm;
  }
  return options;
}

std::unique_ptr<Trainer> MakeTrainer(const graph::Network& net, const TrainerOptions& options) {
  auto trainer = Trainer::Create(net, options);
  INFO(trainer.status().ToString());
  REQUIRE(trainer.ok());
  return std::move(trainer).value();
}

// The training data of a configuration; every source made from it starts at its first batch.
struct Data {
  Dataset examples;
  Tensor tokens;
};

Data DataOf(Config config) {
  std::mt19937 rng(5);
  if (config == Config::kLstm) {
    // 4 streams of 21 tokens: 4 windows of 5 per epoch.
    Tensor tokens = Tensor::Empty({kStreams * 21}, DType::kInt32);
    for (int64_t i = 0; i < tokens.numel(); ++i)
      tokens.data<int32_t>()[i] = static_cast<int32_t>((i * 7 + rng() % 3) % kVocab);
    return {Dataset(), tokens};
  }
  const int64_t n = kBatchesPerEpoch * kBatch + 3;  // the partial last batch is dropped
  Tensor labels = Tensor::Empty({n}, DType::kInt32);
  for (int64_t i = 0; i < n; ++i) labels.data<int32_t>()[i] = static_cast<int32_t>(rng() % kClasses);
  auto examples = Dataset::Create(testing::RandomTensor({n, kIn}, rng), labels, kClasses);
  REQUIRE(examples.ok());
  return {*examples, Tensor()};
}

std::unique_ptr<BatchSource> SourceOf(Config config, const Data& data) {
  if (config == Config::kLstm) {
    auto stream = TokenStream::Create(data.tokens, {.batch = kStreams, .steps = kSteps});
    REQUIRE(stream.ok());
    return std::move(stream).value();
  }
  auto loader = BatchLoader::Create(data.examples, {.batch_size = kBatch, .seed = 3, .drop_last = true});
  REQUIRE(loader.ok());
  return std::move(loader).value();
}

// `steps` iterations the way the CLI drives them: Step on each batch, FinishEpoch after an epoch's last.
std::vector<double> Train(Trainer& trainer, BatchSource& source, int64_t steps) {
  std::vector<double> losses;
  for (int64_t i = 0; i < steps; ++i) {
    const Batch batch = source.Next();
    auto step = trainer.Step(batch.features, batch.labels);
    INFO(step.status().ToString());
    REQUIRE(step.ok());
    losses.push_back(step->loss);
    if (batch.position.batch == source.batches_per_epoch() - 1) REQUIRE(trainer.FinishEpoch().ok());
  }
  return losses;
}

// Bitwise equal weights and optimizer state.
void CheckSameParams(Trainer& got, Trainer& want) {
  REQUIRE(got.SyncWeights().ok());
  REQUIRE(want.SyncWeights().ok());
  for (size_t p = 0; p < want.params().entries().size(); ++p) {
    const ParamEntry& w = want.params().entries()[p];
    const ParamEntry& g = got.params().entries()[p];
    INFO("parameter '" << w.name << "'");
    CHECK(testing::BitwiseEqual(g.param.ToVector(), w.param.ToVector()));
    for (size_t s = 0; s < w.state.size(); ++s)
      CHECK(testing::BitwiseEqual(g.state[s].ToVector(), w.state[s].ToVector()));
  }
}

TEST_CASE("A restored snapshot continues training bit-identically", "[runtime][checkpoint]") {
  const Config config = GENERATE(Config::kRowSgd, Config::kTileAdam, Config::kLstm);
  INFO("configuration " << static_cast<int>(config));
  const graph::Network net = NetworkOf(config);
  const TrainerOptions options = OptionsOf(config);
  const Data data = DataOf(config);
  // Snapshot mid-epoch, after the first epoch's unit shuffle and a learning-rate step.
  const int64_t total = 13, at = config == Config::kLstm ? 6 : 7;
  TempDir dir;
  const std::string path = dir / "run.sievestate";

  auto uninterrupted = MakeTrainer(net, options);
  auto uninterrupted_source = SourceOf(config, data);
  const std::vector<double> want = Train(*uninterrupted, *uninterrupted_source, total);

  {
    auto first = MakeTrainer(net, options);
    auto first_source = SourceOf(config, data);
    Train(*first, *first_source, at);
    REQUIRE(SaveSnapshot(*first, first_source.get(), path).ok());
  }
  auto resumed = MakeTrainer(net, options);
  auto resumed_source = SourceOf(config, data);
  auto info = RestoreSnapshot(*resumed, resumed_source.get(), path);
  INFO(info.status().ToString());
  REQUIRE(info.ok());
  CHECK(info->iteration == at);
  CHECK(resumed->iteration() == at);
  REQUIRE(info->position.has_value());
  CHECK(info->position->batch != 0);  // mid-epoch
  CHECK(resumed_source->position() == *info->position);
  CHECK(resumed->epochs_finished() == at / resumed_source->batches_per_epoch());
  const std::vector<double> got = Train(*resumed, *resumed_source, total - at);
  for (int64_t i = at; i < total; ++i) {
    INFO("iteration " << i + 1);
    CHECK(got[static_cast<size_t>(i - at)] == want[static_cast<size_t>(i)]);
  }
  CheckSameParams(*resumed, *uninterrupted);
}

TEST_CASE("Fit resumes mid-epoch from a snapshot as if it never stopped", "[runtime][checkpoint]") {
  const graph::Network net = Mlp(false);
  const TrainerOptions options = OptionsOf(Config::kRowSgd);
  const Data data = DataOf(Config::kRowSgd);
  TempDir dir;
  const std::string path = dir / "fit.sievestate";
  auto uninterrupted = MakeTrainer(net, options);
  auto uninterrupted_source = SourceOf(Config::kRowSgd, data);
  REQUIRE(uninterrupted->Fit(*uninterrupted_source, {.epochs = 3, .display = 0}).ok());
  {
    auto first = MakeTrainer(net, options);
    auto first_source = SourceOf(Config::kRowSgd, data);
    Train(*first, *first_source, kBatchesPerEpoch + 2);
    REQUIRE(SaveSnapshot(*first, first_source.get(), path).ok());
  }
  auto resumed = MakeTrainer(net, options);
  auto resumed_source = SourceOf(Config::kRowSgd, data);
  REQUIRE(RestoreSnapshot(*resumed, resumed_source.get(), path).ok());
  // The rest of epoch 2 counts as Fit's first epoch.
  auto reports = resumed->Fit(*resumed_source, {.epochs = 2, .display = 0});
  REQUIRE(reports.ok());
  CHECK(resumed->iteration() == 3 * kBatchesPerEpoch);
  CHECK(resumed->epochs_finished() == 3);
  CheckSameParams(*resumed, *uninterrupted);
}

// The offsets of a snapshot's sections, read by the layout of docs/checkpoints.md.
struct SectionSpan {
  std::string name;
  size_t header = 0;   // offset of its 44-byte header
  size_t payload = 0;  // offset of its payload
  uint64_t length = 0;
};

std::vector<SectionSpan> Sections(const std::string& bytes) {
  uint32_t count = 0;
  std::memcpy(&count, bytes.data() + 12, 4);
  std::vector<SectionSpan> spans;
  size_t at = 28;
  for (uint32_t i = 0; i < count; ++i) {
    SectionSpan span;
    span.name = std::string(bytes.data() + at, strnlen(bytes.data() + at, 24));
    span.header = at;
    std::memcpy(&span.length, bytes.data() + at + 28, 8);
    span.payload = at + 44;
    at = span.payload + span.length;
    spans.push_back(span);
  }
  REQUIRE(at == bytes.size());
  return spans;
}

std::string ReadAll(const std::string& path) {
  auto bytes = ReadFileBytes(path, "test");
  REQUIRE(bytes.ok());
  return *bytes;
}

void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Rewrites the CRC32 fields a header edit invalidated (file header and one section header).
void Reseal(std::string& bytes, const SectionSpan* section) {
  const uint32_t file_crc = Crc32(std::string_view(bytes).substr(0, 24));
  std::memcpy(bytes.data() + 24, &file_crc, 4);
  if (section) {
    const uint32_t crc = Crc32(std::string_view(bytes).substr(section->header, 40));
    std::memcpy(bytes.data() + section->header + 40, &crc, 4);
  }
}

TEST_CASE("Restoring a damaged or mismatched snapshot fails precisely and changes nothing", "[runtime][checkpoint]") {
  const graph::Network net = Mlp(false);
  const TrainerOptions options = OptionsOf(Config::kRowSgd);
  const Data data = DataOf(Config::kRowSgd);
  TempDir dir;
  const std::string good = dir / "good.sievestate", bad = dir / "bad.sievestate";
  auto writer = MakeTrainer(net, options);
  auto writer_source = SourceOf(Config::kRowSgd, data);
  Train(*writer, *writer_source, 3);
  REQUIRE(SaveSnapshot(*writer, writer_source.get(), good).ok());
  const std::string bytes = ReadAll(good);
  const std::vector<SectionSpan> sections = Sections(bytes);
  std::vector<std::string> names;
  for (const SectionSpan& s : sections) names.push_back(s.name);
  CHECK(names ==
        std::vector<std::string>{"info", "parameters", "optimizer", "progress", "carried_state", "pattern_search",
                                   "channel_estimates"});

  // The target has trained one step: any change a failed restore made would show.
  auto target = MakeTrainer(net, options);
  auto target_source = SourceOf(Config::kRowSgd, data);
  Train(*target, *target_source, 1);
  auto reference = MakeTrainer(net, options);
  auto reference_source = SourceOf(Config::kRowSgd, data);
  Train(*reference, *reference_source, 1);
  auto fails_with = [&](const std::string& file, const std::vector<std::string>& parts) {
    auto restored = RestoreSnapshot(*target, target_source.get(), file);
    REQUIRE_FALSE(restored.ok());
    const std::string message = restored.status().message();
    INFO(message);
    CHECK_THAT(message, Catch::Contains("'" + file + "'"));
    for (const std::string& part : parts) CHECK_THAT(message, Catch::Contains(part));
    CHECK(target->iteration() == 1);
    CHECK(target_source->position() == LoaderPosition{0, 1});
    CheckSameParams(*target, *reference);
  };

  SECTION("a flipped byte in any section or header") {
    for (const SectionSpan& s : sections) {
      INFO("section " << s.name);
      std::string damaged = bytes;
      damaged[s.payload + s.length / 2] ^= 0x20;
      WriteAll(bad, damaged);
      fails_with(bad, {"is corrupt", "section '" + s.name + "'", "checksum"});
      damaged = bytes;
      damaged[s.header + 30] ^= 0x01;  // its payload length
      WriteAll(bad, damaged);
      fails_with(bad, {"is corrupt", "header of section", "checksum"});
    }
    std::string damaged = bytes;
    damaged[13] ^= 0x01;  // the section count
    WriteAll(bad, damaged);
    fails_with(bad, {"is corrupt", "file header", "checksum"});
  }
  SECTION("a truncated file") {
    for (size_t size : {size_t{12}, size_t{30}, sections[1].payload + 5, bytes.size() - 1}) {
      INFO("size " << size);
      WriteAll(bad, bytes.substr(0, size));
      fails_with(bad, {"truncated"});
    }
  }
  SECTION("a weights file, another file, another network, another solver") {
    REQUIRE(writer->SaveWeights(bad).ok());
    fails_with(bad, {"is a weights file, not a snapshot: pass it as --weights"});
    CHECK_THAT(ReadSnapshotInfo(bad).status().message(), Catch::Contains("pass it as --weights"));
    WriteAll(bad, "name: \"mlp\"\nlayer { }\n");
    fails_with(bad, {"is not a Sieve snapshot"});

    auto wider = MakeTrainer(Mlp(false, 44), options);
    const ParamEntry& first = wider->params().entries().front();
    REQUIRE(SaveSnapshot(*wider, writer_source.get(), bad).ok());
    fails_with(bad, {"another network", "parameter '" + first.name + "'", "[44, 12] in the snapshot",
                     "[40, 12] in the network"});

    TrainerOptions adam = options;
    adam.solver = OptionsOf(Config::kTileAdam).solver;
    auto other_solver = MakeTrainer(net, adam);
    REQUIRE(SaveSnapshot(*other_solver, writer_source.get(), bad).ok());
    fails_with(bad, {"Adam", "SGD"});
  }
  SECTION("a version this build cannot read") {
    std::string newer = bytes;
    newer[8] = 2;
    Reseal(newer, nullptr);
    WriteAll(bad, newer);
    fails_with(bad, {"format version 2; this build reads version 1"});
    for (const SectionSpan& s : sections) {
      INFO("section " << s.name);
      newer = bytes;
      newer[s.header + 24] = 9;
      Reseal(newer, &s);
      WriteAll(bad, newer);
      fails_with(bad, {"'" + s.name + "'", "version 9; this build reads versions up to 1"});
    }
  }
  SECTION("a source that does not fit, or none saved") {
    auto longer = BatchLoader::Create(data.examples, {.batch_size = 4, .seed = 3, .drop_last = true});
    REQUIRE(longer.ok());
    auto restored = RestoreSnapshot(*target, longer->get(), good);
    REQUIRE_FALSE(restored.ok());
    CHECK_THAT(restored.status().message(), Catch::Contains("5 batches per epoch; this one has 10"));
    REQUIRE(SaveSnapshot(*writer, nullptr, bad).ok());
    fails_with(bad, {"without a training source position"});
    auto info = ReadSnapshotInfo(bad);
    REQUIRE(info.ok());
    CHECK_FALSE(info->position.has_value());
  }
  // The good file still restores, after all those failures.
  auto info = RestoreSnapshot(*target, target_source.get(), good);
  INFO(info.status().ToString());
  REQUIRE(info.ok());
  CHECK(target->iteration() == 3);
  CHECK(target_source->position() == LoaderPosition{0, 3});
  CheckSameParams(*target, *writer);
}

TEST_CASE("ReadSnapshotInfo and LoadWeightsFromAny read either kind of file", "[runtime][checkpoint]") {
  const graph::Network net = Mlp(false);
  const TrainerOptions options = OptionsOf(Config::kRowSgd);
  const Data data = DataOf(Config::kRowSgd);
  TempDir dir;
  auto writer = MakeTrainer(net, options);
  auto source = SourceOf(Config::kRowSgd, data);
  Train(*writer, *source, 6);
  REQUIRE(SaveSnapshot(*writer, source.get(), dir / "s.sievestate").ok());
  REQUIRE(writer->SaveWeights(dir / "w.sieveweights").ok());
  auto info = ReadSnapshotInfo(dir / "s.sievestate");
  INFO(info.status().ToString());
  REQUIRE(info.ok());
  CHECK(info->iteration == 6);
  CHECK(info->position == LoaderPosition{1, 1});
  CHECK_THAT(info->network, Catch::StartsWith(writer->params().entries().front().name + " [40, 12]; "));
  for (const std::string file : {"s.sievestate", "w.sieveweights"}) {
    INFO(file);
    auto reader = MakeTrainer(net, options);
    REQUIRE(LoadWeightsFromAny(*reader, dir / file).ok());
    CHECK(reader->iteration() == 0);
    for (size_t p = 0; p < reader->params().entries().size(); ++p)
      CHECK(testing::BitwiseEqual(reader->params().entries()[p].param.ToVector(),
                                  writer->params().entries()[p].param.ToVector()));
  }
  auto wider = MakeTrainer(Mlp(false, 44), options);
  CHECK_THAT(LoadWeightsFromAny(*wider, dir / "s.sievestate").message(), Catch::Contains("another network"));
  CHECK_THAT(LoadWeightsFromAny(*wider, dir / "missing").message(), Catch::Contains("cannot open"));
}

TEST_CASE("A write killed halfway leaves the previous snapshot intact", "[runtime][checkpoint]") {
  const graph::Network net = Mlp(false);
  const TrainerOptions options = OptionsOf(Config::kRowSgd);
  const Data data = DataOf(Config::kRowSgd);
  TempDir dir;
  const std::string path = dir / "run.sievestate";
  auto writer = MakeTrainer(net, options);
  auto source = SourceOf(Config::kRowSgd, data);
  Train(*writer, *source, 3);
  REQUIRE(SaveSnapshot(*writer, source.get(), path).ok());
  const std::string previous = ReadAll(path);
  Train(*writer, *source, 2);
  auto next = EncodeSnapshot(*writer, source.get());
  REQUIRE(next.ok());
  const size_t half = next->size() / 2;

  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // The crash: SIGKILL once half of the temporary file is on disk.
    const Status status =
        WriteFileAtomically(path, *next, "snapshot", {.interrupt_after = half, .interrupt = [] { raise(SIGKILL); }});
    _exit(status.ok() ? 0 : 1);
  }
  int wait_status = 0;
  REQUIRE(waitpid(child, &wait_status, 0) == child);
  REQUIRE(WIFSIGNALED(wait_status));
  CHECK(WTERMSIG(wait_status) == SIGKILL);

  CHECK(ReadAll(path) == previous);
  const std::string stray = path + ".tmp";
  REQUIRE(std::filesystem::exists(stray));
  CHECK(std::filesystem::file_size(stray) == half);
  CHECK_THAT(ReadSnapshotInfo(stray).status().message(), Catch::Contains("truncated"));
  auto restore_stray = RestoreSnapshot(*MakeTrainer(net, options), nullptr, stray);
  REQUIRE_FALSE(restore_stray.ok());
  CHECK_THAT(restore_stray.status().message(), Catch::Contains("truncated"));
  auto info = ReadSnapshotInfo(path);
  REQUIRE(info.ok());
  CHECK(info->iteration == 3);
  auto restored = MakeTrainer(net, options);
  REQUIRE(RestoreSnapshot(*restored, nullptr, path).ok());
  CHECK(restored->iteration() == 3);

  // The next save replaces the stray temporary file and then the snapshot.
  REQUIRE(SaveSnapshot(*writer, source.get(), path).ok());
  CHECK_FALSE(std::filesystem::exists(stray));
  CHECK(ReadAll(path) == *next);
  // A save that cannot write leaves the snapshot as it was.
  const Status unwritable = SaveSnapshot(*writer, source.get(), dir / "missing/run.sievestate");
  CHECK_THAT(unwritable.message(), Catch::Contains("is unchanged"));
  CHECK(ReadAll(path) == *next);
}

}  // namespace
}  // namespace sieve::runtime
