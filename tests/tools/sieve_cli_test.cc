// End-to-end tests of the `sieve` tool: the binary runs as a child process on a tiny generated
// Fashion-MNIST-format dataset (plain IDX files) with a tiny row-ARD MLP. Train with snapshots,
// resume with losses identical to the uninterrupted run, SIGHUP and SIGINT (twice) to the child, a
// resume at max_iter, a weights file given as a snapshot, `sieve test`, bad files and usage errors.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/checkpoint.h"
#include "tests/testing/temp_dir.h"

namespace sieve {
namespace {

namespace fs = std::filesystem;

using testing::TempDir;

void WriteFile(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  REQUIRE(out.good());
}

std::string BigEndian(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

// IDX files of `n` 28x28 images whose bright band depends on the label, and their labels.
void WriteIdxSplit(const fs::path& dir, const std::string& prefix, uint32_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string images = BigEndian(0x803) + BigEndian(n) + BigEndian(28) + BigEndian(28);
  std::string labels = BigEndian(0x801) + BigEndian(n);
  for (uint32_t i = 0; i < n; ++i) {
    const int label = static_cast<int>(rng() % 10);
    labels.push_back(static_cast<char>(label));
    for (int p = 0; p < 784; ++p) {
      const bool band = (p / 28) / 3 == label;
      images.push_back(static_cast<char>(band ? 200 + rng() % 56 : rng() % 60));
    }
  }
  WriteFile(dir / (prefix + "-images-idx3-ubyte"), images);
  WriteFile(dir / (prefix + "-labels-idx1-ubyte"), labels);
}

// A child process whose stdout and stderr go to one pipe.
struct Child {
  pid_t pid = -1;
  int fd = -1;
  std::string output;

  // Reads what is available, waiting up to `timeout_ms`; false at the end of the output.
  bool ReadSome(int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return true;
    char buffer[4096];
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n <= 0) return false;
    output.append(buffer, static_cast<size_t>(n));
    return true;
  }
  // Reads until `needle` has appeared after `from` (true) or the output ends or 60 s pass (false).
  bool ReadUntil(const std::string& needle, size_t from = 0) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (output.find(needle, from) == std::string::npos) {
      if (!ReadSome(100) || std::chrono::steady_clock::now() > deadline) return false;
    }
    return true;
  }
  // Reads the rest and returns the exit status (128 + signal when killed).
  int Wait() {
    while (ReadSome(1000)) {
    }
    close(fd);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
};

Child Spawn(const std::vector<std::string>& args, const fs::path& cwd) {
  std::vector<std::string> words = {SIEVE_CLI_PATH};
  words.insert(words.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  int pipe_fds[2];
  REQUIRE(pipe(pipe_fds) == 0);
  Child child;
  child.pid = fork();
  REQUIRE(child.pid >= 0);
  if (child.pid == 0) {  // only async-signal-safe calls until exec
    dup2(pipe_fds[1], STDOUT_FILENO);
    dup2(pipe_fds[1], STDERR_FILENO);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    if (chdir(cwd.c_str()) != 0) _exit(126);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(pipe_fds[1]);
  child.fd = pipe_fds[0];
  return child;
}

struct Run {
  int code = 0;
  std::string output;
};

Run RunSieve(const std::vector<std::string>& args, const fs::path& cwd) {
  Child child = Spawn(args, cwd);
  Run run;
  run.code = child.Wait();
  run.output = child.output;
  return run;
}

// The folder with data, net and solver files of the tiny model.
struct TinyModel {
  TempDir dir;

  TinyModel() {
    fs::create_directories(dir.path / "data");
    WriteIdxSplit(dir.path / "data", "train", 160, 1);  // 5 batches of 32 per epoch
    WriteIdxSplit(dir.path / "data", "t10k", 48, 2);    // 2 test batches, the second partial
    WriteFile(dir.path / "net.prototxt", R"(name: "tiny"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 784 } batch_size: 32 source { fashion_mnist { dir: "data" } } } }
layer { name: "label" type: "Label" top: "label" }
layer { name: "fc1" type: "FullyConnected" bottom: "data" top: "fc1" fully_connected_param { num_output: 64 } }
layer { name: "relu1" type: "ReLU" bottom: "fc1" top: "relu1" }
layer { name: "drop1" type: "Dropout" bottom: "relu1" top: "drop1" dropout_param { dropout_ratio: 0.5 kind: ROW } }
layer { name: "fc2" type: "FullyConnected" bottom: "drop1" top: "fc2" fully_connected_param { num_output: 10 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc2" bottom: "label" }
layer { name: "accuracy" type: "Accuracy" bottom: "fc2" bottom: "label" }
)");
    Solver("solver.prototxt", 6, 3);
  }
  // A solver file for the net: max_iter, snapshot every `snapshot`, display every iteration.
  void Solver(const std::string& name, int max_iter, int snapshot) const {
    WriteFile(dir.path / name, "net: \"net.prototxt\"\nmax_iter: " + std::to_string(max_iter) +
                                   "\ntest_interval: 3\ntest_iter: 2\ndisplay: 1\nbase_lr: 0.05\nmomentum: 0.9\n"
                                   "snapshot: " +
                                   std::to_string(snapshot) + "\nsnapshot_prefix: \"snap/tiny\"\nrandom_seed: 3\n");
  }
  fs::path Snapshot(int iteration) const {
    return dir.path / "snap" / ("tiny_iter_" + std::to_string(iteration) + ".sievestate");
  }
};

// The losses of the "Iteration N, loss = X" lines, by N.
std::map<int, std::string> LoggedLosses(const std::string& output) {
  std::map<int, std::string> losses;
  const std::regex line(R"(\] Iteration (\d+), loss = ([0-9.]+), lr = )");
  for (auto it = std::sregex_iterator(output.begin(), output.end(), line); it != std::sregex_iterator(); ++it)
    losses[std::stoi((*it)[1])] = (*it)[2];
  return losses;
}

// The training losses of a run's metrics file (17 significant digits: exact), by iteration; the run
// printed the file's path relative to `cwd`.
std::map<int, std::string> MetricLosses(const std::string& output, const fs::path& cwd) {
  std::smatch m;
  REQUIRE(std::regex_search(output, m, std::regex(R"(Metrics: (\S+))")));
  std::ifstream in(cwd / m[1].str());
  std::map<int, std::string> losses;
  const std::regex train(R"(^\{"iteration":(\d+),"phase":"train","loss":([^,]+),)");
  for (std::string text; std::getline(in, text);) {
    std::smatch f;
    if (std::regex_search(text, f, train)) losses[std::stoi(f[1])] = f[2];
  }
  return losses;
}

TEST_CASE("sieve train snapshots and resumes with identical losses and sieve test reads the snapshot", "[cli]") {
  TinyModel model;
  const Run full = RunSieve({"train", "--solver", "solver.prototxt"}, model.dir.path);
  INFO(full.output);
  REQUIRE(full.code == 0);
  CHECK(full.output.find("Test net output #0: accuracy = ") != std::string::npos);
  CHECK(full.output.find("Final test accuracy = ") != std::string::npos);
  CHECK(full.output.find("Last snapshot: snap/tiny_iter_6.sievestate") != std::string::npos);
  CHECK(full.output.find("Log: snap/tiny_logs/") != std::string::npos);
  CHECK(full.output.find('\r') == std::string::npos);  // piped: no progress line
  REQUIRE(fs::exists(model.Snapshot(3)));
  REQUIRE(fs::exists(model.Snapshot(6)));
  const std::map<int, std::string> logged = LoggedLosses(full.output);
  const std::map<int, std::string> exact = MetricLosses(full.output, model.dir.path);
  REQUIRE(logged.size() == 6);
  REQUIRE(exact.size() == 6);

  const Run resumed =
      RunSieve({"train", "--solver", "solver.prototxt", "--snapshot", "snap/tiny_iter_3.sievestate"}, model.dir.path);
  INFO(resumed.output);
  REQUIRE(resumed.code == 0);
  CHECK(resumed.output.find("Solving from iteration 3 to max_iter 6") != std::string::npos);
  const std::map<int, std::string> logged_resumed = LoggedLosses(resumed.output);
  const std::map<int, std::string> exact_resumed = MetricLosses(resumed.output, model.dir.path);
  REQUIRE(logged_resumed.size() == 3);
  for (int it = 4; it <= 6; ++it) {
    INFO("iteration " << it);
    CHECK(logged_resumed.at(it) == logged.at(it));
    CHECK(exact_resumed.at(it) == exact.at(it));
  }

  // Resuming at max_iter: nothing to train, and said so.
  const Run done =
      RunSieve({"train", "--solver", "solver.prototxt", "--snapshot", "snap/tiny_iter_6.sievestate"}, model.dir.path);
  CHECK(done.code == 1);
  CHECK(done.output.find("snapshot 'snap/tiny_iter_6.sievestate' was taken after iteration 6, which is not below "
                         "max_iter = 6") != std::string::npos);

  // --weights takes a snapshot too; sieve test evaluates one.
  const Run from_weights =
      RunSieve({"train", "--solver", "solver.prototxt", "--weights", "snap/tiny_iter_6.sievestate"}, model.dir.path);
  CHECK(from_weights.code == 0);
  const Run test =
      RunSieve({"test", "--model", "net.prototxt", "--weights", "snap/tiny_iter_6.sievestate"}, model.dir.path);
  INFO(test.output);
  CHECK(test.code == 0);
  CHECK(std::regex_search(test.output,
                          std::regex(R"(on 48 test examples \(2 batches of 32\): accuracy = [01]\.\d{4}, loss = \d)")));
  const Run one_batch =
      RunSieve({"test", "--model", "net.prototxt", "--weights", "snap/tiny_iter_6.sievestate", "--iterations", "1"},
               model.dir.path);
  CHECK(one_batch.output.find("on 32 test examples (1 batches of 32)") != std::string::npos);
}

TEST_CASE("sieve train --seed and --snapshot-prefix override the solver file", "[cli]") {
  TinyModel model;
  const Run file_seed = RunSieve({"train", "--solver", "solver.prototxt"}, model.dir.path);
  const Run same_seed = RunSieve(
      {"train", "--solver", "solver.prototxt", "--seed", "3", "--snapshot-prefix", "runs/seed3/tiny"}, model.dir.path);
  const Run other_seed = RunSieve(
      {"train", "--solver", "solver.prototxt", "--seed", "4", "--snapshot-prefix", "runs/seed4/tiny"}, model.dir.path);
  INFO(file_seed.output << same_seed.output << other_seed.output);
  REQUIRE(file_seed.code == 0);
  REQUIRE(same_seed.code == 0);
  REQUIRE(other_seed.code == 0);
  CHECK(same_seed.output.find(", seed 3") != std::string::npos);
  CHECK(other_seed.output.find(", seed 4") != std::string::npos);
  // The solver file's seed is 3: the same run, written elsewhere; seed 4 is another run.
  CHECK(MetricLosses(same_seed.output, model.dir.path) == MetricLosses(file_seed.output, model.dir.path));
  CHECK(MetricLosses(other_seed.output, model.dir.path) != MetricLosses(file_seed.output, model.dir.path));
  CHECK(fs::exists(model.dir.path / "runs/seed3/tiny_iter_6.sievestate"));
  CHECK(fs::exists(model.dir.path / "runs/seed4/tiny_iter_6.sievestate"));
  CHECK(same_seed.output.find("Log: runs/seed3/tiny_logs/") != std::string::npos);

  const Run resume_with_seed = RunSieve(
      {"train", "--solver", "solver.prototxt", "--snapshot", "snap/tiny_iter_3.sievestate", "--seed", "5"},
      model.dir.path);
  CHECK(resume_with_seed.code == 2);
  CHECK(resume_with_seed.output.find("--snapshot and --seed exclude each other") != std::string::npos);
  const Run negative = RunSieve({"train", "--solver", "solver.prototxt", "--seed", "-1"}, model.dir.path);
  CHECK(negative.code == 2);
  CHECK(negative.output.find("--seed") != std::string::npos);
}

TEST_CASE("sieve train snapshots on SIGHUP and continues and on SIGINT snapshots and stops", "[cli]") {
  TinyModel model;
  model.Solver("long.prototxt", 1000000, 0);
  Child child = Spawn({"train", "--solver", "long.prototxt"}, model.dir.path);
  REQUIRE(child.ReadUntil("] Iteration 2, loss"));
  kill(child.pid, SIGHUP);
  REQUIRE(child.ReadUntil("Snapshot written: "));
  const size_t after_hup = child.output.size();
  REQUIRE(child.ReadUntil("loss = ", after_hup));  // it trains on
  kill(child.pid, SIGINT);
  const int code = child.Wait();
  INFO(child.output);
  CHECK(code == 0);
  std::smatch stop;
  REQUIRE(std::regex_search(child.output, stop,
                            std::regex(R"(Stopped at iteration (\d+) on request; resume with --snapshot (\S+))")));
  const std::string path = (model.dir.path / stop[2].str()).string();
  StatusOr<runtime::SnapshotInfo> info = runtime::ReadSnapshotInfo(path);
  INFO(info.status().ToString());
  REQUIRE(info.ok());
  CHECK(info->iteration == std::stoi(stop[1]));
  int snapshots = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(model.dir.path / "snap"))
    snapshots += entry.path().extension() == ".sievestate";
  CHECK(snapshots == 2);  // SIGHUP's and SIGINT's
}

TEST_CASE("a second SIGINT while sieve train snapshots leaves a good snapshot", "[cli]") {
  TinyModel model;
  model.Solver("long.prototxt", 1000000, 0);
  Child child = Spawn({"train", "--solver", "long.prototxt"}, model.dir.path);
  REQUIRE(child.ReadUntil("] Iteration 2, loss"));
  kill(child.pid, SIGINT);
  REQUIRE(child.ReadUntil("Snapshotting to "));
  kill(child.pid, SIGINT);
  const int code = child.Wait();
  INFO(child.output);
  CHECK(code == 0);
  std::smatch stop;
  REQUIRE(std::regex_search(child.output, stop, std::regex(R"(resume with --snapshot (\S+))")));
  REQUIRE(runtime::ReadSnapshotInfo((model.dir.path / stop[1].str()).string()).ok());
  for (const fs::directory_entry& entry : fs::directory_iterator(model.dir.path / "snap"))
    CHECK((entry.is_directory() || entry.path().extension() == ".sievestate"));  // no temporary file left
}

TEST_CASE("sieve reports bad files in one located line and usage errors with the nearest name", "[cli]") {
  TinyModel model;
  std::string net;
  {
    std::ifstream in(model.dir.path / "net.prototxt");
    std::ostringstream text;
    text << in.rdbuf();
    net = text.str();
  }
  WriteFile(model.dir.path / "typo.prototxt", std::regex_replace(net, std::regex("num_output: 64"), "num_ouput: 64"));
  const Run typo = RunSieve({"test", "--model", "typo.prototxt", "--weights", "x"}, model.dir.path);
  CHECK(typo.code == 1);
  CHECK(typo.output ==
        "sieve test: typo.prototxt:5:94: unknown field 'num_ouput' in FullyConnectedParameter (nearest valid field: "
        "'num_output')\n");
  WriteFile(model.dir.path / "dangling.prototxt",
            std::regex_replace(net, std::regex("bottom: \"relu1\""), "bottom: \"relu\""));
  WriteFile(model.dir.path / "solver_dangling.prototxt", "net: \"dangling.prototxt\"\nmax_iter: 1\nbase_lr: 0.1\n");
  const Run dangling = RunSieve({"train", "--solver", "solver_dangling.prototxt"}, model.dir.path);
  CHECK(dangling.code == 1);
  CHECK(std::regex_match(dangling.output,
                         std::regex(R"(sieve train: dangling\.prototxt:\d+:\d+: layer 'drop1' \(Dropout\): input blob )"
                                    R"('relu' is not written by an earlier layer \(nearest: 'relu1'\)\n)")));
  WriteFile(model.dir.path / "solver_absent.prototxt", "net: \"absent.prototxt\"\nmax_iter: 1\nbase_lr: 0.1\n");
  const Run absent = RunSieve({"train", "--solver", "solver_absent.prototxt"}, model.dir.path);
  CHECK(absent.code == 1);
  CHECK(absent.output.find("absent.prototxt") != std::string::npos);
  fs::rename(model.dir.path / "data", model.dir.path / "moved");
  const Run no_data = RunSieve({"train", "--solver", "solver.prototxt"}, model.dir.path);
  CHECK(no_data.code == 1);
  CHECK(no_data.output.find("dataset-fashion-mnist") != std::string::npos);
  CHECK_FALSE(fs::exists(model.dir.path / "snap"));  // nothing created for a run that cannot start
  // A weights file is not a snapshot (the checkpoint's message).
  WriteFile(model.dir.path / "w.sieveweights", "SIEVEWT1 and then some bytes");
  const Run weights =
      RunSieve({"train", "--solver", "solver.prototxt", "--snapshot", "w.sieveweights"}, model.dir.path);
  CHECK(weights.code == 1);
  CHECK(weights.output.find("w.sieveweights") != std::string::npos);
  CHECK(weights.output.find("weights file") != std::string::npos);

  const Run verb = RunSieve({"trian"}, model.dir.path);
  CHECK(verb.code == 2);
  CHECK(verb.output.find("unknown verb 'trian' (nearest valid verb: 'train')") != std::string::npos);
  const Run flag = RunSieve({"train", "--solvr", "solver.prototxt"}, model.dir.path);
  CHECK(flag.code == 2);
  CHECK(flag.output.find("unknown flag '--solvr' (nearest valid flag: '--solver')") != std::string::npos);
  const Run both = RunSieve({"train", "--solver", "s", "--snapshot", "a", "--weights", "b"}, model.dir.path);
  CHECK(both.code == 2);
  CHECK(both.output.find("--snapshot and --weights exclude each other") != std::string::npos);
  const Run missing = RunSieve({"test", "--model", "net.prototxt"}, model.dir.path);
  CHECK(missing.code == 2);
  CHECK(missing.output.find("--weights is required") != std::string::npos);
  const Run count = RunSieve({"time", "--model", "net.prototxt", "--iterations", "many"}, model.dir.path);
  CHECK(count.code == 2);
  CHECK(count.output.find("--iterations takes an integer") != std::string::npos);
  for (const char* v : {"train", "test", "time", "search", "device_query"}) {
    const Run help = RunSieve({v, "--help"}, model.dir.path);
    CHECK(help.code == 0);
    CHECK(help.output.find(std::string("usage: sieve ") + v) != std::string::npos);
  }
  const Run top = RunSieve({"--help"}, model.dir.path);
  CHECK(top.code == 0);
  CHECK(top.output.find("device_query") != std::string::npos);
}

TEST_CASE("sieve time and search and device_query run on the tiny model", "[cli]") {
  TinyModel model;
  const Run time = RunSieve({"time", "--model", "net.prototxt", "--iterations", "2"}, model.dir.path);
  INFO(time.output);
  CHECK(time.code == 0);
  CHECK(std::regex_search(time.output, std::regex(R"(\nfc2 +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+x +0\.\d+\n)")));
  CHECK(time.output.find("configured dropout vs dense") != std::string::npos);
  const Run search = RunSieve({"search", "--model", "net.prototxt"}, model.dir.path);
  CHECK(search.code == 0);
  CHECK(search.output.find("site drop1") != std::string::npos);
  const Run query = RunSieve({"device_query"}, model.dir.path);
  CHECK(query.output.find("cpu: ") != std::string::npos);
#ifndef SIEVE_WITH_CUDA
  CHECK(query.code == 1);
  CHECK(query.output.find("built without the CUDA backend") != std::string::npos);
#endif
}

}  // namespace
}  // namespace sieve
