// Tests of the pass manager: the per-iteration pipeline following the patterns a pass sets,
// instrument order, timing, dump files, and how a failing pass or verification stops the run.
#include "graph/pass.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "graph/verify.h"
#include "tests/graph/test_graphs.h"

namespace sieve::graph {
namespace {

using testing::MakeMlp;
using testing::NodeNamed;
using testing::SiteNamed;
using testing::Val;

// Stands in for SamplePatterns: sets the MLP site's pattern of the iteration from a fixed table.
class SetPatternsPass final : public Pass {
 public:
  std::string_view name() const override { return "SetPatterns"; }
  Status Run(Graph& graph, PassContext& context) override {
    SIEVE_ASSIGN_OR_RETURN(const SiteId site, graph.FindSite("h1.drop"));
    static const ops::RowPattern kTable[] = {{1, 2, 0}, {1, 4, 3}, {3, 4, 1}};
    graph.SetSitePattern(site, kTable[context.iteration % 3]);
    return Status::Ok();
  }
};

// Appends "<name>" to a shared log when it runs; fails when told to.
class LoggingPass final : public Pass {
 public:
  LoggingPass(std::string name, std::vector<std::string>* log, Status result = Status::Ok())
      : name_(std::move(name)), log_(log), result_(std::move(result)) {}
  std::string_view name() const override { return name_; }
  Status Run(Graph&, PassContext&) override {
    log_->push_back(name_);
    return result_;
  }

 private:
  std::string name_;
  std::vector<std::string>* log_;
  Status result_;
};

// Breaks the graph: a live shape larger than the planned one.
class BreakPass final : public Pass {
 public:
  std::string_view name() const override { return "Break"; }
  Status Run(Graph& graph, PassContext&) override {
    graph.mutable_value(ValueId{0}).live[0] += 1;
    return Status::Ok();
  }
};

// Logs "<name>.before:<pass>" and "<name>.after:<pass>".
class LoggingInstrument final : public Instrument {
 public:
  LoggingInstrument(std::string name, std::vector<std::string>* log, bool fail_before = false)
      : name_(std::move(name)), log_(log), fail_before_(fail_before) {}
  std::string_view name() const override { return name_; }
  Status BeforePass(const Pass& pass, int index, const Graph&, const PassContext&) override {
    log_->push_back(name_ + ".before:" + std::string(pass.name()) + "#" + std::to_string(index));
    if (fail_before_) return SIEVE_ERROR(StatusCode::kUnavailable, "instrument refuses");
    return Status::Ok();
  }
  Status AfterPass(const Pass& pass, int index, const Graph&, const PassContext&) override {
    log_->push_back(name_ + ".after:" + std::string(pass.name()) + "#" + std::to_string(index));
    return Status::Ok();
  }

 private:
  std::string name_;
  std::vector<std::string>* log_;
  bool fail_before_;
};

PassContext Context(int64_t iteration, bool verify = true) {
  PassContext context;
  context.iteration = iteration;
  context.seed = 1234;
  context.options.verify_each = verify;
  return context;
}

PassManager IterationPipeline() {
  std::vector<std::unique_ptr<Pass>> choose;
  choose.push_back(std::make_unique<SetPatternsPass>());
  return MakeIterationPipeline(std::move(choose));
}

TEST_CASE("The iteration pipeline makes the graph follow the patterns a pass sets", "[graph]") {
  Graph g = MakeMlp();
  PassManager pipeline = IterationPipeline();
  CHECK(pipeline.pass_names() == std::vector<std::string>{"SetPatterns", "ResolveSites", "ReplanShapes"});
  const int64_t kept[] = {4, 2, 6};  // row(1,2,0), row(1,4,3), row(3,4,1) over 8 units
  const float alpha[] = {2.0f, 4.0f, 4.0f / 3.0f};
  for (int64_t iteration = 0; iteration < 6; ++iteration) {
    PassContext context = Context(iteration);
    const Status st = pipeline.Run(g, context);
    INFO("iteration " << iteration << ": " << st.ToString());
    REQUIRE(st.ok());
    CHECK(g.attrs_current());
    CHECK(g.shapes_current());
    const ops::MatMulAttr& fwd1 = std::get<ops::MatMulAttr>(g.node(NodeNamed(g, "fc1.fwd")).attr);
    const ops::MatMulAttr& fwd2 = std::get<ops::MatMulAttr>(g.node(NodeNamed(g, "fc2.fwd")).attr);
    REQUIRE(fwd1.n);
    REQUIRE(fwd2.k);
    CHECK(fwd1.n->pattern == fwd2.k->pattern);
    CHECK(ops::KeptCount(fwd1.n->pattern, 8) == kept[iteration % 3]);
    CHECK(fwd2.alpha == Approx(alpha[iteration % 3]));
    CHECK(g.value(Val(g, "h1")).live == Shape{4, kept[iteration % 3]});
    CHECK(g.value(Val(g, "fc1.out.grad")).live == Shape{4, kept[iteration % 3]});
    CHECK(g.value(Val(g, "fc1.w.grad")).live == Shape{8, 6});
  }
  CHECK(Verify(g).ok());
}

TEST_CASE("Instruments run in order before a pass and in reverse after it", "[graph]") {
  Graph g = MakeMlp();
  std::vector<std::string> log;
  PassManager pm;
  pm.Add(std::make_unique<LoggingPass>("A", &log)).Add(std::make_unique<LoggingPass>("B", &log));
  pm.AddInstrument(std::make_unique<LoggingInstrument>("outer", &log));
  pm.AddInstrument(std::make_unique<LoggingInstrument>("inner", &log));
  PassContext context = Context(0);
  context.options.timing = true;
  REQUIRE(pm.Run(g, context).ok());
  CHECK(log == std::vector<std::string>{"outer.before:A#0", "inner.before:A#0", "A", "inner.after:A#0",
                                        "outer.after:A#0", "outer.before:B#1", "inner.before:B#1", "B",
                                        "inner.after:B#1", "outer.after:B#1"});
}

TEST_CASE("TimingInstrument accumulates the time of each pass over runs", "[graph]") {
  Graph g = MakeMlp();
  PassManager pipeline = IterationPipeline();
  for (int64_t iteration = 0; iteration < 3; ++iteration) {
    PassContext context = Context(iteration);
    context.options.timing = true;
    REQUIRE(pipeline.Run(g, context).ok());
  }
  PassContext untimed = Context(3);
  REQUIRE(pipeline.Run(g, untimed).ok());  // not counted
  const auto& entries = pipeline.timing().entries();
  REQUIRE(entries.size() == 3);
  CHECK(entries[0].pass == "SetPatterns");
  CHECK(entries[1].pass == "ResolveSites");
  CHECK(entries[2].pass == "ReplanShapes");
  for (const auto& e : entries) {
    CHECK(e.runs == 3);
    CHECK(e.total_ms >= 0.0);
    CHECK(e.total_ms < 10000.0);
  }
  CHECK_THAT(pipeline.timing().Report(), Catch::Contains("ResolveSites: 3 runs,"));
}

TEST_CASE("A failing pass stops the pipeline with its code, name, position and iteration", "[graph]") {
  Graph g = MakeMlp();
  std::vector<std::string> log;
  PassManager pm;
  pm.Add(std::make_unique<LoggingPass>("First", &log))
      .Add(std::make_unique<LoggingPass>("Fails", &log, SIEVE_ERROR(StatusCode::kOutOfRange, "no pattern fits")))
      .Add(std::make_unique<LoggingPass>("Never", &log));
  PassContext context = Context(7);
  const Status st = pm.Run(g, context);
  REQUIRE_FALSE(st.ok());
  CHECK(st.code() == StatusCode::kOutOfRange);
  CHECK_THAT(st.message(), Catch::StartsWith("pass 'Fails' (2 of 3) at iteration 7 failed: no pattern fits"));
  CHECK(log == std::vector<std::string>{"First", "Fails"});
}

TEST_CASE("ResolveSites without a pattern fails naming the pass, the node and the site", "[graph]") {
  Graph g = MakeMlp();
  PassManager pipeline = MakeIterationPipeline({});
  PassContext context = Context(11);
  const Status st = pipeline.Run(g, context);
  REQUIRE_FALSE(st.ok());
  CHECK_THAT(st.message(), Catch::StartsWith("pass 'ResolveSites' (1 of 2) at iteration 11 failed") &&
                               Catch::Contains("node 'fc1.fwd'") && Catch::Contains("site 'h1.drop'"));
}

TEST_CASE("Verification after each pass stops a pass that breaks the graph", "[graph]") {
  Graph g = MakeMlp();
  std::vector<std::string> log;
  PassManager pm;
  pm.Add(std::make_unique<BreakPass>()).Add(std::make_unique<LoggingPass>("Next", &log));
  SECTION("verify_each on") {
    PassContext context = Context(3);
    const Status st = pm.Run(g, context);
    REQUIRE_FALSE(st.ok());
    CHECK(st.code() == StatusCode::kInvalidArgument);
    CHECK_THAT(st.message(), Catch::StartsWith("Verify after pass 'Break' (1 of 2) at iteration 3: the graph it "
                                               "produced is invalid: value 'x'"));
    CHECK(log.empty());
  }
  SECTION("verify_each off") {
    PassContext context = Context(3, false);
    CHECK(pm.Run(g, context).ok());
    CHECK(log == std::vector<std::string>{"Next"});
  }
  SECTION("a broken input is blamed on the input") {
    PassContext context = Context(4);
    g.mutable_value(Val(g, "h1")).live = {4, 9};
    const Status st = pm.Run(g, context);
    REQUIRE_FALSE(st.ok());
    CHECK_THAT(st.message(), Catch::StartsWith("Verify before pass 'Break' (1 of 2) at iteration 4: the input graph "
                                               "is invalid: value 'h1'"));
    CHECK(g.value(ValueId{0}).live == g.value(ValueId{0}).planned);  // Break never ran
  }
}

TEST_CASE("A failing instrument hook stops the run before the pass", "[graph]") {
  Graph g = MakeMlp();
  std::vector<std::string> log;
  PassManager pm;
  pm.Add(std::make_unique<LoggingPass>("Only", &log));
  pm.AddInstrument(std::make_unique<LoggingInstrument>("gate", &log, true));
  PassContext context = Context(0);
  const Status st = pm.Run(g, context);
  REQUIRE_FALSE(st.ok());
  CHECK(st.code() == StatusCode::kUnavailable);
  CHECK_THAT(st.message(), Catch::StartsWith("gate before pass 'Only' (1 of 1) at iteration 0: instrument refuses"));
  CHECK(log == std::vector<std::string>{"gate.before:Only#0"});
}

TEST_CASE("dump_dir receives a text and a dot file per pass", "[graph]") {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("sieve_graph_dump_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  Graph g = MakeMlp();
  PassManager pipeline = IterationPipeline();
  PassContext context = Context(5);
  context.options.dump_dir = (dir / "nested").string();
  REQUIRE(pipeline.Run(g, context).ok());
  auto read = [](const std::filesystem::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  };
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir / "nested")) {
    (void)entry;
    ++files;
  }
  CHECK(files == 6);
  const std::string sampled = read(dir / "nested" / "5_0_SetPatterns.txt");
  CHECK_THAT(sampled, Catch::StartsWith("graph: 20 values, 14 nodes, 1 sites; attributes stale, live shapes stale") &&
                          Catch::Contains("pattern=row(k=3,T=4,o=1)"));
  const std::string resolved = read(dir / "nested" / "5_1_ResolveSites.txt");
  CHECK_THAT(resolved, Catch::Contains("attributes current, live shapes stale"));
  const std::string replanned = read(dir / "nested" / "5_2_ReplanShapes.txt");
  CHECK_THAT(replanned, Catch::Contains("attributes current, live shapes current") &&
                            Catch::Contains("%8 h1: activation float32 [4,8]→[4,6]"));
  CHECK_THAT(read(dir / "nested" / "5_2_ReplanShapes.dot"), Catch::StartsWith("digraph sieve {"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("Verification after each pass defaults to on exactly in debug builds", "[graph]") {
#ifdef NDEBUG
  CHECK_FALSE(PassOptions{}.verify_each);
#else
  CHECK(PassOptions{}.verify_each);
#endif
}

}  // namespace
}  // namespace sieve::graph
