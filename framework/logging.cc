// The "sieve" spdlog logger: stderr, colour when a terminal, level from SIEVE_LOG_LEVEL.
#include "framework/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <cstdlib>

namespace sieve {

spdlog::logger& Log() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto l = spdlog::stderr_color_mt("sieve");
    l->set_pattern("%^%L%m%d %H:%M:%S.%f %v%$");  // Caffe/glog-like: I1126 15:04:05.123456 message
    l->set_level(spdlog::level::info);
    if (const char* env = std::getenv("SIEVE_LOG_LEVEL")) {
      const auto level = spdlog::level::from_str(env);
      if (level != spdlog::level::off || std::string(env) == "off") l->set_level(level);
    }
    return l;
  }();
  return *logger;
}

bool SetLogLevel(const std::string& level) {
  const auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") return false;
  Log().set_level(parsed);
  return true;
}

}  // namespace sieve
