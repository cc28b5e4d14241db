// The PyTorch peer's C++ end: process spawning over two pipes, the line protocol of peer.py, a minimal
// JSON reader for its replies (objects, arrays, strings, numbers, booleans, null: all that peer.py
// writes; not a general JSON library), and the thread probe.
#include "tools/bench/pytorch_peer.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <thread>
#include <utility>
#include <variant>

extern char** environ;

#ifndef SIEVE_SOURCE_DIR
#define SIEVE_SOURCE_DIR ""
#endif

namespace sieve::bench {

namespace {

constexpr const char* kInstallHint = "install with bash tools/bench/setup_pytorch.sh";
constexpr int kHelloTimeoutMs = 120 * 1000;  // importing torch on a busy 2-core machine takes seconds
constexpr int kReplyTimeoutMs = 600 * 1000;  // a block of steps of a large model

Status Unavailable(const std::string& why) {
  return Status(StatusCode::kUnavailable, "PyTorch peer unavailable: " + why + "; " + kInstallHint);
}

// --- A minimal JSON value and reader --------------------------------------------------------------

struct Json {
  using Array = std::vector<Json>;
  using Object = std::vector<std::pair<std::string, Json>>;
  std::variant<std::nullptr_t, bool, double, std::string, Array, Object> value;

  const Json* Find(const std::string& key) const {
    if (const auto* object = std::get_if<Object>(&value))
      for (const auto& [k, v] : *object)
        if (k == key) return &v;
    return nullptr;
  }
};

class JsonReader {
 public:
  explicit JsonReader(const std::string& text) : text_(text) {}

  StatusOr<Json> ReadDocument() {
    SIEVE_ASSIGN_OR_RETURN(Json json, ReadValue(0));
    SkipSpace();
    if (pos_ != text_.size()) return Error("trailing characters");
    return json;
  }

 private:
  Status Error(const std::string& what) const {
    return Status(StatusCode::kDataLoss,
                  "malformed JSON from the PyTorch peer (" + what + " at byte " + std::to_string(pos_) + "): " + text_);
  }
  void SkipSpace() {
    while (pos_ < text_.size() && std::strchr(" \t\r\n", text_[pos_]) != nullptr) ++pos_;
  }
  bool Consume(const char* literal) {
    const size_t n = std::strlen(literal);
    if (text_.compare(pos_, n, literal) != 0) return false;
    pos_ += n;
    return true;
  }

  StatusOr<Json> ReadValue(int depth) {
    if (depth > 32) return Error("nesting too deep");
    SkipSpace();
    if (pos_ >= text_.size()) return Error("unexpected end");
    const char c = text_[pos_];
    if (c == '{') return ReadObject(depth);
    if (c == '[') return ReadArray(depth);
    if (c == '"') {
      SIEVE_ASSIGN_OR_RETURN(std::string s, ReadString());
      return Json{std::move(s)};
    }
    if (Consume("true")) return Json{true};
    if (Consume("false")) return Json{false};
    if (Consume("null")) return Json{nullptr};
    // Python's json writes NaN/Infinity for non-finite floats; keep them as numbers.
    if (Consume("NaN")) return Json{std::nan("")};
    if (Consume("Infinity")) return Json{HUGE_VAL};
    if (Consume("-Infinity")) return Json{-HUGE_VAL};
    const char* begin = text_.c_str() + pos_;
    char* end = nullptr;
    const double number = std::strtod(begin, &end);
    if (end == begin) return Error("unexpected character");
    pos_ += static_cast<size_t>(end - begin);
    return Json{number};
  }

  StatusOr<std::string> ReadString() {
    ++pos_;  // opening quote
    std::string out;
    while (pos_ < text_.size()) {
      const char c = text_[pos_++];
      if (c == '"') return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= text_.size()) break;
      const char e = text_[pos_++];
      switch (e) {
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'u': {
          if (pos_ + 4 > text_.size()) return Error("short \\u escape");
          const unsigned code = static_cast<unsigned>(std::strtoul(text_.substr(pos_, 4).c_str(), nullptr, 16));
          pos_ += 4;
          // Messages only: non-ASCII code points (and surrogate halves) are written as UTF-8 one by one.
          if (code < 0x80) {
            out += static_cast<char>(code);
          } else if (code < 0x800) {
            out += static_cast<char>(0xC0 | (code >> 6));
            out += static_cast<char>(0x80 | (code & 0x3F));
          } else {
            out += static_cast<char>(0xE0 | (code >> 12));
            out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (code & 0x3F));
          }
          break;
        }
        default:  // \" \\ \/
          out += e;
      }
    }
    return Error("unterminated string");
  }

  StatusOr<Json> ReadArray(int depth) {
    ++pos_;
    Json::Array items;
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == ']') {
      ++pos_;
      return Json{std::move(items)};
    }
    while (true) {
      SIEVE_ASSIGN_OR_RETURN(Json item, ReadValue(depth + 1));
      items.push_back(std::move(item));
      SkipSpace();
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
      } else if (pos_ < text_.size() && text_[pos_] == ']') {
        ++pos_;
        return Json{std::move(items)};
      } else {
        return Error("expected ',' or ']'");
      }
    }
  }

  StatusOr<Json> ReadObject(int depth) {
    ++pos_;
    Json::Object members;
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == '}') {
      ++pos_;
      return Json{std::move(members)};
    }
    while (true) {
      SkipSpace();
      if (pos_ >= text_.size() || text_[pos_] != '"') return Error("expected a key");
      SIEVE_ASSIGN_OR_RETURN(std::string key, ReadString());
      SkipSpace();
      if (pos_ >= text_.size() || text_[pos_] != ':') return Error("expected ':'");
      ++pos_;
      SIEVE_ASSIGN_OR_RETURN(Json value, ReadValue(depth + 1));
      members.emplace_back(std::move(key), std::move(value));
      SkipSpace();
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
      } else if (pos_ < text_.size() && text_[pos_] == '}') {
        ++pos_;
        return Json{std::move(members)};
      } else {
        return Error("expected ',' or '}'");
      }
    }
  }

  const std::string& text_;
  size_t pos_ = 0;
};

// Typed field access on a reply; a missing or mistyped field is a protocol error naming the field.
template <typename T>
StatusOr<T> Field(const Json& reply, const std::string& key) {
  const Json* v = reply.Find(key);
  const T* typed = v != nullptr ? std::get_if<T>(&v->value) : nullptr;
  if (typed == nullptr)
    return Status(StatusCode::kDataLoss, "PyTorch peer reply lacks field '" + key + "' of the expected type");
  return *typed;
}

std::string StringOr(const Json& reply, const std::string& key, const std::string& fallback) {
  const Json* v = reply.Find(key);
  const auto* s = v != nullptr ? std::get_if<std::string>(&v->value) : nullptr;
  return s != nullptr ? *s : fallback;
}

StatusOr<Json> ParseReply(const std::string& line) {
  SIEVE_ASSIGN_OR_RETURN(Json reply, JsonReader(line).ReadDocument());
  SIEVE_ASSIGN_OR_RETURN(bool ok, Field<bool>(reply, "ok"));
  if (!ok) return Status(StatusCode::kInternal, "PyTorch peer: " + StringOr(reply, "error", line));
  return reply;
}

std::string Number(double v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

std::string DescribeExit(int wait_status) {
  if (WIFEXITED(wait_status)) return "exited with status " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) return std::string("killed by signal ") + strsignal(WTERMSIG(wait_status));
  return "stopped";
}

}  // namespace

// --- Flags and paths ----------------------------------------------------------------------------

StatusOr<PeerLaunch> ParsePeerFlags(std::vector<std::string>& args) {
  PeerLaunch launch;
  std::string python;
  std::vector<std::string> rest;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--pytorch" || arg == "--python") {
      if (i + 1 >= args.size()) return Status(StatusCode::kInvalidArgument, arg + " needs a path");
      (arg == "--pytorch" ? launch.script : python) = args[++i];
    } else if (arg == "--no-pytorch") {
      launch.disabled = true;
    } else {
      rest.push_back(arg);
    }
  }
  args = std::move(rest);
  if (launch.script.empty()) {
    const char* env = std::getenv("SIEVE_PYTORCH_PEER");
    launch.script = env != nullptr && *env != '\0' ? env : FindPeerScript();
  }
  if (python.empty()) {
    const char* env = std::getenv("SIEVE_PYTORCH_PYTHON");
    if (env != nullptr && *env != '\0') python = env;
  }
  // The PATH's python3 first; then the system interpreter that Debian's python3-torch installs for
  // (a pyenv or venv python3 earlier on PATH does not see Debian's dist-packages).
  launch.pythons =
      python.empty() ? std::vector<std::string>{"python3", "/usr/bin/python3"} : std::vector<std::string>{python};
  return launch;
}

std::string FindPeerScript() {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  std::vector<fs::path> candidates;
  if (!ec) candidates.push_back(exe.parent_path() / "pytorch" / "peer.py");
  if (*SIEVE_SOURCE_DIR != '\0') candidates.push_back(fs::path(SIEVE_SOURCE_DIR) / "tools/bench/pytorch/peer.py");
  for (const fs::path& p : candidates)
    if (fs::is_regular_file(p, ec)) return p.string();
  return "";
}

std::string MlpModelJson(const std::vector<int64_t>& sizes, double dropout) {
  std::string json = "{\"kind\": \"mlp\", \"sizes\": [";
  for (size_t i = 0; i < sizes.size(); ++i) json += (i ? ", " : "") + std::to_string(sizes[i]);
  return json + "], \"dropout\": " + Number(dropout) + "}";
}

// --- The process --------------------------------------------------------------------------------

StatusOr<std::unique_ptr<PyTorchPeer>> PyTorchPeer::Start(const PeerLaunch& launch) {
  if (launch.disabled) return Status(StatusCode::kUnavailable, "PyTorch peer not started (--no-pytorch)");
  if (launch.script.empty())
    return Unavailable(
        "peer.py not found next to the executable (pytorch/peer.py) nor in the source tree; pass "
        "--pytorch PATH or set SIEVE_PYTORCH_PEER");
  if (!std::filesystem::is_regular_file(launch.script)) return Unavailable("no peer script at " + launch.script);
  // A peer that dies mid-request must not kill the bench through SIGPIPE; writes then fail with EPIPE.
  std::signal(SIGPIPE, SIG_IGN);

  std::string tried;
  for (const std::string& python : launch.pythons) {
    int to_child[2], from_child[2];
    if (pipe2(to_child, O_CLOEXEC) != 0) return Unavailable(std::string("pipe: ") + std::strerror(errno));
    if (pipe2(from_child, O_CLOEXEC) != 0) {
      close(to_child[0]);
      close(to_child[1]);
      return Unavailable(std::string("pipe: ") + std::strerror(errno));
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, to_child[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, from_child[1], STDOUT_FILENO);
    std::vector<std::string> argv_storage = {python, "-u", launch.script};
    std::vector<char*> argv;
    for (std::string& a : argv_storage) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    const int rc = posix_spawnp(&pid, python.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(to_child[0]);
    close(from_child[1]);
    if (rc != 0) {
      close(to_child[1]);
      close(from_child[0]);
      tried += (tried.empty() ? "" : "; ") + python + ": " + std::strerror(rc);
      continue;
    }
    std::unique_ptr<PyTorchPeer> peer(new PyTorchPeer(pid, to_child[1], from_child[0]));
    StatusOr<std::string> hello_line = peer->ReadLine(kHelloTimeoutMs);
    StatusOr<Json> hello = hello_line.ok() ? ParseReply(*hello_line) : StatusOr<Json>(hello_line.status());
    if (!hello.ok()) {
      std::string why = hello.status().message();
      const std::string prefix = "PyTorch peer: ";
      if (why.rfind(prefix, 0) == 0) why = why.substr(prefix.size());
      tried += (tried.empty() ? "" : "; ") + python + ": " + why;
      continue;  // the destructor reaps it
    }
    const Json& h = *hello;
    peer->info_.torch_version = StringOr(h, "torch", "unknown");
    peer->info_.python = StringOr(h, "python", python);
    peer->info_.blas = StringOr(h, "blas", "unknown");
    const Json* threads = h.Find("default_threads");
    if (threads != nullptr && std::holds_alternative<double>(threads->value))
      peer->info_.default_threads = static_cast<int>(std::get<double>(threads->value));
    const Json* cuda = h.Find("cuda");
    peer->info_.cuda = cuda != nullptr && std::holds_alternative<bool>(cuda->value) && std::get<bool>(cuda->value);
    return peer;
  }
  return Unavailable(tried);
}

PyTorchPeer::~PyTorchPeer() { Stop(); }

void PyTorchPeer::Stop() {
  if (pid_ <= 0) return;
  if (to_child_ >= 0) {
    const std::string quit = "{\"cmd\": \"quit\"}\n";
    [[maybe_unused]] const ssize_t written = write(to_child_, quit.data(), quit.size());
    close(to_child_);  // EOF ends the peer's read loop even if the quit line was lost
    to_child_ = -1;
  }
  // Give it a few seconds to exit on its own, then terminate it.
  int status = 0;
  for (int i = 0; i < 50; ++i) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  if (from_child_ >= 0) close(from_child_);
  from_child_ = -1;
}

StatusOr<std::string> PyTorchPeer::ReadLine(int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    const size_t newline = pending_.find('\n');
    if (newline != std::string::npos) {
      std::string line = pending_.substr(0, newline);
      pending_.erase(0, newline + 1);
      return line;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0)
      return Status(StatusCode::kUnavailable,
                    "PyTorch peer gave no reply within " + std::to_string(timeout_ms / 1000) + " s");
    pollfd fd{from_child_, POLLIN, 0};
    const int ready = poll(&fd, 1, static_cast<int>(left));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;  // timeout: the deadline check above reports it
    char buf[4096];
    const ssize_t n = read(from_child_, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int status = 0;
      std::string how = "closed its output";
      if (waitpid(pid_, &status, 0) == pid_) {
        how = DescribeExit(status);
        pid_ = -1;
      }
      return Status(StatusCode::kUnavailable, "the peer process " + how + " (its stderr above may say why)");
    }
    pending_.append(buf, static_cast<size_t>(n));
  }
}

StatusOr<std::string> PyTorchPeer::Request(const std::string& json) {
  SIEVE_ENSURE(pid_ > 0 && to_child_ >= 0, StatusCode::kFailedPrecondition, "PyTorch peer is not running");
  const std::string line = json + "\n";
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = write(to_child_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      return Status(StatusCode::kUnavailable, std::string("cannot write to the PyTorch peer: ") + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  return ReadLine(kReplyTimeoutMs);
}

StatusOr<PeerModel> PyTorchPeer::Build(const PeerBuild& build) {
  const std::string optimizer = !build.optimizer_json.empty() ? build.optimizer_json
                                                              : "{\"kind\": \"sgd\", \"lr\": " + Number(build.lr) +
                                                                    ", \"momentum\": " + Number(build.momentum) + "}";
  const std::string request = "{\"cmd\": \"build\", \"model\": " + build.model_json +
                              ", \"batch\": " + std::to_string(build.batch) + ", \"optimizer\": " + optimizer +
                              ", \"threads\": " + std::to_string(build.threads) +
                              ", \"seed\": " + std::to_string(build.seed) + ", \"id\": \"" + JsonEscape(build.id) +
                              "\", \"device\": \"" + JsonEscape(build.device) + "\"}";
  SIEVE_ASSIGN_OR_RETURN(std::string line, Request(request));
  SIEVE_ASSIGN_OR_RETURN(Json reply, ParseReply(line));
  PeerModel model;
  SIEVE_ASSIGN_OR_RETURN(double parameters, Field<double>(reply, "parameters"));
  SIEVE_ASSIGN_OR_RETURN(double threads, Field<double>(reply, "threads"));
  SIEVE_ASSIGN_OR_RETURN(model.forward_flops, Field<double>(reply, "flops"));
  model.parameters = static_cast<int64_t>(parameters);
  model.threads = static_cast<int>(threads);
  if (reply.Find("sieve_parameters") != nullptr) {
    SIEVE_ASSIGN_OR_RETURN(double sieve_parameters, Field<double>(reply, "sieve_parameters"));
    model.sieve_parameters = static_cast<int64_t>(sieve_parameters);
  }
  return model;
}

StatusOr<PeerSteps> PyTorchPeer::Step(int n, std::optional<int> threads, const std::string& id) {
  std::string request = "{\"cmd\": \"step\", \"n\": " + std::to_string(n) + ", \"id\": \"" + JsonEscape(id) + "\"";
  if (threads) request += ", \"threads\": " + std::to_string(*threads);
  SIEVE_ASSIGN_OR_RETURN(std::string line, Request(request + "}"));
  SIEVE_ASSIGN_OR_RETURN(Json reply, ParseReply(line));
  SIEVE_ASSIGN_OR_RETURN(Json::Array ms, Field<Json::Array>(reply, "ms"));
  PeerSteps steps;
  for (const Json& v : ms) {
    const double* t = std::get_if<double>(&v.value);
    if (t == nullptr) return Status(StatusCode::kDataLoss, "PyTorch peer step reply: 'ms' holds a non-number");
    steps.ms.push_back(*t);
  }
  SIEVE_ENSURE(static_cast<int>(steps.ms.size()) == n, StatusCode::kDataLoss,
               "PyTorch peer ran " << steps.ms.size() << " steps, asked for " << n);
  SIEVE_ASSIGN_OR_RETURN(steps.last_loss, Field<double>(reply, "loss"));
  return steps;
}

// --- Thread probe -------------------------------------------------------------------------------

std::vector<ThreadSetting> ThreadSettings(int default_threads) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<ThreadSetting> settings;
  for (int t : {1, 2, cores}) {
    const bool seen =
        std::any_of(settings.begin(), settings.end(), [&](const ThreadSetting& s) { return s.threads == t; });
    if (!seen && t != default_threads) settings.push_back({t, t, "threads=" + std::to_string(t)});
  }
  // The default as PyTorch picks it itself; when it equals an explicit setting it is that one.
  settings.push_back({0, default_threads, "threads=default(" + std::to_string(default_threads) + ")"});
  return settings;
}

StatusOr<std::vector<Timing>> ProbeThreads(PyTorchPeer& peer, const std::vector<ThreadSetting>& settings, int rounds,
                                           int block, std::chrono::milliseconds settle, const std::string& id) {
  std::vector<std::vector<double>> samples(settings.size());
  for (int r = 0; r < rounds; ++r) {
    for (size_t i = 0; i < settings.size(); ++i) {
      // The first step after a switch pays for the thread pool's resize: untimed.
      SIEVE_ASSIGN_OR_RETURN(PeerSteps warm, peer.Step(1, settings[i].threads, id));
      SIEVE_ASSIGN_OR_RETURN(PeerSteps steps, peer.Step(block, std::nullopt, id));
      samples[i].insert(samples[i].end(), steps.ms.begin(), steps.ms.end());
      std::this_thread::sleep_for(settle);
    }
  }
  std::vector<Timing> timings;
  for (auto& s : samples) timings.push_back(Timing::FromSamples(std::move(s)));
  return timings;
}

}  // namespace sieve::bench
