// `sieve search`: the pattern distribution of every row and tile dropout site of a net (SPEC 2.5;
// graph/pattern_search.h), as the training run would search it: the table of FormatSearchTable per
// site, with the search settings of a solver file when one is given.
#include <cstdio>

#include "graph/lower.h"
#include "graph/pattern_pass.h"
#include "graph/pattern_search.h"
#include "tools/sieve/cli.h"
#include "tools/sieve/verbs.h"

namespace sieve::cli {
namespace {

int RunSearch(const Verb& verb, const Args& args) {
  runtime::SolverFile solver = DefaultSolver();
  if (args.Has("solver")) {
    StatusOr<runtime::SolverFile> file = runtime::LoadSolverFile(args.Get("solver"));
    if (!file.ok()) return Fail(verb, file.status());
    solver = *file;
  }
  StatusOr<Model> model = ReadModel(args.Get("model"), solver, Device::CPU());
  if (!model.ok()) return Fail(verb, model.status());
  StatusOr<graph::LoweredNet> net =
      graph::Lower(model->train_net.network, {.batch = model->options.batch_size, .training = true});
  if (!net.ok()) return Fail(verb, net.status());
  StatusOr<std::vector<graph::SiteDistribution>> sites =
      graph::SearchSiteDistributions(net->graph, solver.pattern_search);
  if (!sites.ok()) return Fail(verb, sites.status());
  for (const graph::DropoutSite& site : net->graph.sites()) {
    if (site.kind == graph::SiteKind::kRow || site.kind == graph::SiteKind::kTile) continue;
    std::printf("site %s: %s dropout, rate %g (no pattern distribution: %s)\n\n", site.name.c_str(),
                graph::SiteKindName(site.kind), site.rate,
                site.kind == graph::SiteKind::kBernoulli ? "element-wise masks" : "kept channels chosen per iteration");
  }
  for (const graph::SiteDistribution& site : *sites) {
    std::printf("site %s\n%s\n", site.site_name.c_str(), graph::FormatSearchTable(*site.result).c_str());
  }
  if (sites->empty()) std::printf("the net has no row or tile dropout site: nothing to search\n");
  return kExitOk;
}

}  // namespace

const Verb kSearchVerb{
    .name = "search",
    .summary = "print the pattern distribution of every row and tile dropout site",
    .usage = "sieve search --model FILE [--solver FILE]",
    .description =
        "Lowers the net's TRAIN phase and runs the pattern-distribution search of each row and tile\n"
        "dropout site (docs/pattern_search.md), with the solver file's pattern_search settings when\n"
        "--solver is given (otherwise the defaults).",
    .flags = {{"model", "FILE", "the net file (protobuf text; docs/model_files.md)"},
              {"solver", "FILE", "take the pattern_search settings of this solver file"}},
    .required = {"model"},
    .run = RunSearch};

}  // namespace sieve::cli
