// The `sieve` tool's shared machinery (cli.h): flags, help, errors and model loading.
#include "tools/sieve/cli.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "framework/suggest.h"
#include "runtime/train_loop.h"

namespace sieve::cli {

const std::string& Args::Get(const std::string& name) const {
  auto it = values_.find(name);
  SIEVE_CHECK(it != values_.end(), "flag --" << name << " was not given");
  return it->second;
}

StatusOr<int64_t> Args::GetInt(const std::string& name, int64_t min, int64_t max) const {
  const std::string& text = Get(name);
  errno = 0;
  char* end = nullptr;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  SIEVE_ENSURE(!text.empty() && end && *end == '\0' && errno == 0 && value >= min && value <= max,
               StatusCode::kInvalidArgument,
               "--" << name << " takes an integer in [" << min << ", " << max << "]; got '" << text << "'");
  return static_cast<int64_t>(value);
}

StatusOr<Args> ParseArgs(const Verb& verb, int argc, char** argv, bool* help) {
  Args args;
  *help = false;
  std::vector<std::string> names = {"--help"};
  for (const Flag& flag : verb.flags) names.push_back("--" + flag.name);
  for (int i = 0; i < argc; ++i) {
    std::string word = argv[i];
    if (word == "--help" || word == "-h") {
      *help = true;
      return args;
    }
    std::optional<std::string> inline_value;
    if (const size_t eq = word.find('='); word.rfind("--", 0) == 0 && eq != std::string::npos) {
      inline_value = word.substr(eq + 1);
      word = word.substr(0, eq);
    }
    const Flag* flag = nullptr;
    for (const Flag& f : verb.flags) {
      if (word == "--" + f.name) flag = &f;
    }
    if (!flag) {
      const std::string what = word.rfind("-", 0) == 0 ? "unknown flag" : "unexpected argument";
      return SIEVE_ERROR(StatusCode::kInvalidArgument,
                         what << " '" << word << "' (nearest valid flag: '" << NearestName(word, names) << "')");
    }
    if (flag->value.empty()) {
      SIEVE_ENSURE(!inline_value, StatusCode::kInvalidArgument, "--" << flag->name << " takes no value");
      args.Set(flag->name, "");
      continue;
    }
    if (!inline_value) {
      SIEVE_ENSURE(i + 1 < argc, StatusCode::kInvalidArgument,
                   "--" << flag->name << " needs a value (" << flag->value << ")");
      inline_value = argv[++i];
    }
    SIEVE_ENSURE(!args.Has(flag->name), StatusCode::kInvalidArgument, "--" << flag->name << " is given twice");
    args.Set(flag->name, *inline_value);
  }
  for (const std::string& name : verb.required) {
    SIEVE_ENSURE(args.Has(name), StatusCode::kInvalidArgument, "--" << name << " is required");
  }
  return args;
}

std::string VerbHelp(const Verb& verb) {
  std::ostringstream out;
  out << "usage: " << verb.usage << "\n\n" << verb.summary << ".\n";
  if (!verb.description.empty()) out << "\n" << verb.description << "\n";
  out << "\nflags:\n";
  size_t width = 6;
  for (const Flag& flag : verb.flags) width = std::max(width, flag.name.size() + 3 + flag.value.size());
  const auto line = [&](const std::string& left, const std::string& help) {
    out << "  " << left << std::string(width + 2 - left.size(), ' ') << help << "\n";
  };
  for (const Flag& flag : verb.flags) line("--" + flag.name + (flag.value.empty() ? "" : " " + flag.value), flag.help);
  line("--help", "print this help and exit");
  out << "\nReference: docs/cli.md\n";
  return out.str();
}

std::string UserMessage(const Status& status) {
  // The tag is " (path.cc:123)" (or .h, .cu); a message that ends otherwise is kept whole.
  const std::string& message = status.message();
  const size_t open = message.rfind(" (");
  if (open == std::string::npos || message.back() != ')') return message;
  const std::string_view tag = std::string_view(message).substr(open + 2, message.size() - open - 3);
  const size_t colon = tag.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == tag.size() ||
      tag.find_first_not_of("0123456789", colon + 1) != std::string_view::npos)
    return message;
  const std::string_view file = tag.substr(0, colon);
  const bool source = file.ends_with(".cc") || file.ends_with(".h") || file.ends_with(".cu");
  return source ? message.substr(0, open) : message;
}

int Fail(const Verb& verb, const Status& status) {
  std::fprintf(stderr, "sieve %s: %s\n", verb.name.c_str(), UserMessage(status).c_str());
  return kExitFailure;
}

int UsageError(const Verb& verb, const std::string& message) {
  std::fprintf(stderr, "sieve %s: %s\nsee 'sieve %s --help'\n", verb.name.c_str(), message.c_str(), verb.name.c_str());
  return kExitUsage;
}

StatusOr<Device> DeviceFromArgs(const Args& args, Device fallback) {
  if (!args.Has("gpu")) return fallback;
  SIEVE_ASSIGN_OR_RETURN(const int64_t index, args.GetInt("gpu", 0, 1023));
  return Device::CUDA(static_cast<int>(index));
}

runtime::SolverFile DefaultSolver() {
  runtime::SolverFile solver;
  solver.max_iter = 1;
  return solver;
}

StatusOr<Model> ReadModel(const std::string& net_path, const runtime::SolverFile& solver, Device device) {
  Model model;
  SIEVE_ASSIGN_OR_RETURN(model.train_net, runtime::LoadNetConfig(net_path, runtime::NetPhase::kTrain));
  SIEVE_ASSIGN_OR_RETURN(model.test_net, runtime::LoadNetConfig(net_path, runtime::NetPhase::kTest));
  runtime::TrainerOptions& options = model.options;
  options.batch_size = model.train_net.batch_size > 0 ? model.train_net.batch_size : kDefaultBatchSize;
  options.eval_batch_size = model.test_net.batch_size > 0 ? model.test_net.batch_size : options.batch_size;
  options.solver = solver.solver;
  options.device = device;
  options.seed = solver.random_seed;
  options.carry_state = runtime::IsStatefulSource(model.train_net);
  options.search = solver.pattern_search;
  return model;
}

Status CreateTrainer(Model& model) {
  SIEVE_ASSIGN_OR_RETURN(model.trainer, runtime::Trainer::Create(model.train_net.network, model.options));
  return Status::Ok();
}

}  // namespace sieve::cli
