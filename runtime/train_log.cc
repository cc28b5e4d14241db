// The training log (train_log.h): line prefixes, durations, metrics lines, the progress line and the
// library-log capture.
#include "runtime/train_log.h"

#include <spdlog/sinks/base_sink.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <sstream>
#include <utility>

#include "framework/logging.h"

namespace sieve::runtime {

// Forwards the library's log lines into a TrainLog, formatted as its own lines are.
class LibraryLogSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit LibraryLogSink(TrainLog* log) : log_(log) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    char severity = 'I';
    if (msg.level == spdlog::level::warn) severity = 'W';
    if (msg.level >= spdlog::level::err) severity = 'E';
    const std::string_view file = msg.source.filename ? std::string_view(msg.source.filename) : "sieve";
    const int line = msg.source.filename ? msg.source.line : 0;
    std::string text = LogLinePrefix(severity, msg.time, file, line);
    text.append(msg.payload.data(), msg.payload.size());
    log_->WriteLine(text);
  }
  void flush_() override {}

 private:
  TrainLog* log_;
};

namespace {

std::string_view BaseName(std::string_view path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// A JSON number: finite values with `digits` significant digits, null otherwise (JSON has no NaN).
std::string JsonNumber(double value, int digits) {
  if (!std::isfinite(value)) return "null";
  char buffer[40];
  std::snprintf(buffer, sizeof(buffer), "%.*g", digits, value);
  return buffer;
}

}  // namespace

std::string LogLinePrefix(char severity, std::chrono::system_clock::time_point when, std::string_view file, int line) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(when);
  std::tm local{};
  localtime_r(&seconds, &local);
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(when.time_since_epoch()).count() % 1000;
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%c%02d%02d %02d:%02d:%02d.%03d ", severity, local.tm_mon + 1, local.tm_mday,
                local.tm_hour, local.tm_min, local.tm_sec, static_cast<int>(millis));
  std::string prefix = buffer;
  prefix += BaseName(file);
  if (line > 0) prefix += ":" + std::to_string(line);
  prefix += "] ";
  return prefix;
}

std::string FormatDuration(double seconds) {
  const int64_t s = seconds > 0 && std::isfinite(seconds) ? static_cast<int64_t>(seconds) : 0;
  char buffer[48];
  if (s < 60) {
    std::snprintf(buffer, sizeof(buffer), "%llds", static_cast<long long>(s));
  } else if (s < 3600) {
    std::snprintf(buffer, sizeof(buffer), "%lldm%02llds", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  } else if (s < 86400) {
    std::snprintf(buffer, sizeof(buffer), "%lldh%02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>(s % 3600 / 60));
  } else {
    std::snprintf(buffer, sizeof(buffer), "%lldd%02lldh", static_cast<long long>(s / 86400),
                  static_cast<long long>(s % 86400 / 3600));
  }
  return buffer;
}

std::string MetricsJson(const MetricsRecord& r) {
  std::ostringstream out;
  out << "{\"iteration\":" << r.iteration << ",\"phase\":\"" << r.phase << "\",\"loss\":" << JsonNumber(r.loss, 17)
      << ",\"accuracy\":" << JsonNumber(r.accuracy, 17);
  if (r.perplexity) out << ",\"perplexity\":" << JsonNumber(*r.perplexity, 9);
  if (r.lr) out << ",\"lr\":" << JsonNumber(*r.lr, 9);
  if (r.step_ms) out << ",\"step_ms\":" << JsonNumber(*r.step_ms, 6);
  if (r.flop_ratio) out << ",\"flop_ratio\":" << JsonNumber(*r.flop_ratio, 6);
  if (r.examples_per_s) out << ",\"examples_per_s\":" << JsonNumber(*r.examples_per_s, 6);
  if (!r.drop_rates.empty()) {
    out << ",\"drop_rate\":{";
    for (size_t i = 0; i < r.drop_rates.size(); ++i) {
      out << (i ? "," : "") << "\"" << r.drop_rates[i].first << "\":" << JsonNumber(r.drop_rates[i].second, 9);
    }
    out << "}";
  }
  out << ",\"wall_s\":" << JsonNumber(r.wall_s, 6) << "}";
  return out.str();
}

TrainLog::TrainLog(TrainLogOptions options) : options_(std::move(options)), start_(std::chrono::steady_clock::now()) {}

StatusOr<std::unique_ptr<TrainLog>> TrainLog::Open(TrainLogOptions options) {
  std::unique_ptr<TrainLog> log(new TrainLog(std::move(options)));
  const auto open = [](const std::string& path, const char* what, std::FILE** file) -> Status {
    if (path.empty()) return Status::Ok();
    *file = std::fopen(path.c_str(), "a");
    SIEVE_ENSURE(*file != nullptr, StatusCode::kUnavailable,
                 "cannot open the " << what << " '" << path << "': " << std::strerror(errno));
    return Status::Ok();
  };
  SIEVE_RETURN_IF_ERROR(open(log->options_.log_path, "log file", &log->log_file_));
  SIEVE_RETURN_IF_ERROR(open(log->options_.metrics_path, "metrics file", &log->metrics_file_));
  if (log->options_.capture_library_log) {
    auto& sinks = Log().sinks();
    log->saved_sinks_ = sinks;
    sinks.assign(1, std::make_shared<LibraryLogSink>(log.get()));
  }
  return log;
}

TrainLog::~TrainLog() {
  if (options_.capture_library_log) Log().sinks() = saved_sinks_;
  std::lock_guard<std::mutex> lock(mutex_);
  if (progress_shown_ && options_.console) std::fputs("\r\033[K", options_.console);
  if (log_file_) std::fclose(log_file_);
  if (metrics_file_) std::fclose(metrics_file_);
}

void TrainLog::Line(char severity, std::string_view message, std::source_location where) {
  std::string line =
      LogLinePrefix(severity, std::chrono::system_clock::now(), where.file_name(), static_cast<int>(where.line()));
  line += message;
  WriteLine(line);
}

void TrainLog::WriteLine(const std::string& line) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (options_.console) {
    if (progress_shown_) std::fputs("\r\033[K", options_.console);
    progress_shown_ = false;
    std::fputs(line.c_str(), options_.console);
    std::fputc('\n', options_.console);
    std::fflush(options_.console);
  }
  if (log_file_) {
    std::fputs(line.c_str(), log_file_);
    std::fputc('\n', log_file_);
    std::fflush(log_file_);
  }
}

void TrainLog::Progress(std::string_view text) {
  if (!options_.progress || !options_.console) return;
  std::lock_guard<std::mutex> lock(mutex_);
  // At most ten redraws a second: a terminal that redraws every fast iteration slows the run.
  const auto now = std::chrono::steady_clock::now();
  if (progress_shown_ && now - last_progress_ < std::chrono::milliseconds(100)) return;
  last_progress_ = now;
  std::fputs("\r\033[K", options_.console);
  std::fwrite(text.data(), 1, text.size(), options_.console);
  std::fflush(options_.console);
  progress_shown_ = true;
}

Status TrainLog::Metrics(MetricsRecord record) {
  if (!metrics_file_) return Status::Ok();
  record.wall_s = seconds();
  const std::string line = MetricsJson(record) + "\n";
  std::lock_guard<std::mutex> lock(mutex_);
  SIEVE_ENSURE(std::fputs(line.c_str(), metrics_file_) >= 0 && std::fflush(metrics_file_) == 0,
               StatusCode::kUnavailable,
               "cannot write to the metrics file '" << options_.metrics_path << "': " << std::strerror(errno));
  return Status::Ok();
}

double TrainLog::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

}  // namespace sieve::runtime
