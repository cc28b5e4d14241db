// The pass manager, its built-in instruments and the two site-following passes.
#include "graph/pass.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "graph/dump.h"
#include "graph/verify.h"

namespace sieve::graph {

namespace {

// Keeps the failure's code; the message says where the pipeline stopped, then why.
Status Located(const Status& status, const std::string& where) {
  return Status(status.code(), where + ": " + status.message());
}

std::string PassPlace(const Pass& pass, int index, int count, const PassContext& context) {
  std::ostringstream os;
  os << "pass '" << pass.name() << "' (" << index + 1 << " of " << count << ") at iteration " << context.iteration;
  return os.str();
}

Status WriteFile(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  SIEVE_ENSURE(out.good(), StatusCode::kUnavailable, "cannot write graph dump " << path.string());
  return Status::Ok();
}

}  // namespace

Status Instrument::BeforePass(const Pass&, int, const Graph&, const PassContext&) { return Status::Ok(); }
Status Instrument::AfterPass(const Pass&, int, const Graph&, const PassContext&) { return Status::Ok(); }

Status VerifyInstrument::BeforePass(const Pass& pass, int index, const Graph& graph, const PassContext& context) {
  if (index > 0) return Status::Ok();  // later inputs were verified as the previous pass's output
  Status st = Verify(graph);
  return st.ok() ? st : Located(st, "the input graph is invalid");
}

Status VerifyInstrument::AfterPass(const Pass& pass, int index, const Graph& graph, const PassContext& context) {
  Status st = Verify(graph);
  return st.ok() ? st : Located(st, "the graph it produced is invalid");
}

Status DumpInstrument::AfterPass(const Pass& pass, int index, const Graph& graph, const PassContext& context) {
  std::error_code error;
  std::filesystem::create_directories(dir_, error);
  SIEVE_ENSURE(!error, StatusCode::kUnavailable, "cannot create dump directory '" << dir_ << "': " << error.message());
  const std::string stem =
      std::to_string(context.iteration) + "_" + std::to_string(index) + "_" + std::string(pass.name());
  const std::filesystem::path base = std::filesystem::path(dir_) / stem;
  SIEVE_RETURN_IF_ERROR(WriteFile(base.string() + ".txt", DumpText(graph)));
  return WriteFile(base.string() + ".dot", DumpDot(graph));
}

Status TimingInstrument::BeforePass(const Pass&, int, const Graph&, const PassContext&) {
  start_ = std::chrono::steady_clock::now();
  return Status::Ok();
}

Status TimingInstrument::AfterPass(const Pass& pass, int, const Graph&, const PassContext&) {
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count();
  auto it = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.pass == pass.name(); });
  if (it == entries_.end()) it = entries_.insert(entries_.end(), Entry{std::string(pass.name())});
  ++it->runs;
  it->total_ms += ms;
  return Status::Ok();
}

std::string TimingInstrument::Report() const {
  std::ostringstream os;
  for (const Entry& e : entries_)
    os << e.pass << ": " << e.runs << " runs, " << e.total_ms << " ms total, "
       << e.total_ms / static_cast<double>(e.runs) << " ms mean\n";
  return os.str();
}

PassManager& PassManager::Add(std::unique_ptr<Pass> pass) {
  SIEVE_CHECK(pass != nullptr);
  passes_.push_back(std::move(pass));
  return *this;
}

PassManager& PassManager::AddInstrument(std::unique_ptr<Instrument> instrument) {
  SIEVE_CHECK(instrument != nullptr);
  instruments_.push_back(std::move(instrument));
  return *this;
}

std::vector<std::string> PassManager::pass_names() const {
  std::vector<std::string> names;
  for (const auto& pass : passes_) names.emplace_back(pass->name());
  return names;
}

Status PassManager::Run(Graph& graph, PassContext& context) {
  VerifyInstrument verify;
  DumpInstrument dump(context.options.dump_dir);
  std::vector<Instrument*> active;
  if (context.options.verify_each) active.push_back(&verify);
  if (!context.options.dump_dir.empty()) active.push_back(&dump);
  for (const auto& instrument : instruments_) active.push_back(instrument.get());
  if (context.options.timing) active.push_back(&timing_);

  const int count = static_cast<int>(passes_.size());
  for (int index = 0; index < count; ++index) {
    Pass& pass = *passes_[index];
    const std::string place = PassPlace(pass, index, count, context);
    for (Instrument* instrument : active) {
      Status st = instrument->BeforePass(pass, index, graph, context);
      if (!st.ok()) return Located(st, std::string(instrument->name()) + " before " + place);
    }
    if (Status st = pass.Run(graph, context); !st.ok()) return Located(st, place + " failed");
    for (auto it = active.rbegin(); it != active.rend(); ++it) {
      Status st = (*it)->AfterPass(pass, index, graph, context);
      if (!st.ok()) return Located(st, std::string((*it)->name()) + " after " + place);
    }
  }
  return Status::Ok();
}

Status ResolveSitesPass::Run(Graph& graph, PassContext&) { return ResolveSiteUses(graph); }

Status ReplanShapesPass::Run(Graph& graph, PassContext&) { return ResolveLiveShapes(graph); }

PassManager MakeIterationPipeline(std::vector<std::unique_ptr<Pass>> choose_patterns) {
  PassManager pipeline;
  for (auto& pass : choose_patterns) pipeline.Add(std::move(pass));
  pipeline.Add(std::make_unique<ResolveSitesPass>()).Add(std::make_unique<ReplanShapesPass>());
  return pipeline;
}

}  // namespace sieve::graph
