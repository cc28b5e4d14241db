// Logging through spdlog. One named logger "sieve"; its level comes from SIEVE_LOG_LEVEL
// (trace, debug, info, warn, error, off; default info) and tests lower it to warn.
#pragma once

#include <spdlog/spdlog.h>

namespace sieve {

/// The shared logger, created on first use.
spdlog::logger& Log();
/// Sets the level by name ("debug", "warn", ...); returns false for an unknown name.
bool SetLogLevel(const std::string& level);

}  // namespace sieve

#define SIEVE_LOG_TRACE(...) ::sieve::Log().trace(__VA_ARGS__)
#define SIEVE_LOG_DEBUG(...) ::sieve::Log().debug(__VA_ARGS__)
#define SIEVE_LOG_INFO(...) ::sieve::Log().info(__VA_ARGS__)
#define SIEVE_LOG_WARN(...) ::sieve::Log().warn(__VA_ARGS__)
#define SIEVE_LOG_ERROR(...) ::sieve::Log().error(__VA_ARGS__)
