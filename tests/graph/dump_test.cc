// Tests of the text and Graphviz dumps: exact lines for the MLP, every attribute family, broken
// graphs, and dot output that is well-formed.
#include "graph/dump.h"

#include <catch2/catch.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "tests/graph/test_graphs.h"

namespace sieve::graph {
namespace {

using testing::MakeMlp;
using testing::NodeNamed;
using testing::SiteNamed;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool HasLine(const std::string& text, const std::string& line) {
  for (const std::string& l : Lines(text))
    if (l == line) return true;
  return false;
}

TEST_CASE("DumpText shows sites, values and nodes with live shapes and annotations", "[graph]") {
  Graph g = MakeMlp();
  std::string text = DumpText(g);
  CHECK(Lines(text).front() == "graph: 20 values, 14 nodes, 1 sites; attributes current, live shapes current");
  CHECK(HasLine(text, "  $0 h1.drop: row width=8 rate=0.5 pattern=none"));
  CHECK(HasLine(text, "  %8 h1: activation float32 [4,8] packed(axis 1 by h1.drop)"));
  CHECK(HasLine(text, "  %1 labels: label int32 [4]"));
  CHECK(HasLine(text,
                "  #3 fc2.fwd (forward): %9 fc2.mm [4,3] = MatMul(%8 h1 [4,8], %4 fc2.w [3,8]) {trans_b} "
                "uses(h1.drop→K packed(a) scale)"));
  CHECK(HasLine(text, "  #2 fc1.relu (forward): %8 h1 [4,8] = Activation(%7 fc1.out [4,8]) {relu}"));
  CHECK(HasLine(text, "  #8 fc2.w.grad.zero (backward): %14 fc2.w.grad.init [3,8] = Fill() {value=0}"));
  CHECK(Lines(text).size() == 1 + 2 + 1 + 20 + 1 + 14);

  g.SetSitePattern(SiteNamed(g, "h1.drop"), ops::RowPattern{1, 2, 0});
  CHECK(Lines(DumpText(g)).front() == "graph: 20 values, 14 nodes, 1 sites; attributes stale, live shapes stale");
  REQUIRE(ResolveSiteUses(g).ok());
  REQUIRE(ResolveLiveShapes(g).ok());
  text = DumpText(g);
  INFO(text);
  CHECK(HasLine(text, "  $0 h1.drop: row width=8 rate=0.5 pattern=row(k=1,T=2,o=0)"));
  CHECK(HasLine(text, "  %8 h1: activation float32 [4,8]→[4,4] packed(axis 1 by h1.drop)"));
  CHECK(HasLine(text,
                "  #3 fc2.fwd (forward): %9 fc2.mm [4,3] = MatMul(%8 h1 [4,8]→[4,4], %4 fc2.w [3,8]) "
                "{trans_b, alpha=2, K: row(k=1,T=2,o=0)/8 packed(a)} uses(h1.drop→K packed(a) scale)"));
  CHECK(HasLine(text,
                "  #9 fc2.wgrad (backward): %15 fc2.w.grad [3,8] = MatMul(%12 logits.grad [4,3], "
                "%8 h1 [4,8]→[4,4], base %14 fc2.w.grad.init [3,8]) {trans_a, alpha=2, "
                "N: row(k=1,T=2,o=0)/8 packed(b)} uses(h1.drop→N packed(b) scale)"));
  CHECK(HasLine(text,
                "  #1 fc1.bias (forward): %7 fc1.out [4,8]→[4,4] = BiasAdd(%6 fc1.mm [4,8]→[4,4], "
                "%3 fc1.b [8]) {cols: row(k=1,T=2,o=0)} uses(h1.drop→bias_cols)"));
}

TEST_CASE("AttrToString and SiteUseToString print every attribute family", "[graph]") {
  CHECK(AttrToString(NodeAttr{}).empty());
  CHECK(AttrToString(ops::MatMulAttr{}).empty());
  ops::MatMulAttr mm;
  mm.trans_a = true;
  mm.beta = 1.0f;
  mm.m = ops::DimSelection{ops::ChannelSet{{0, 2}}, 3, ops::Layout::kPacked, ops::Layout::kFull, ops::Layout::kPacked};
  mm.tile = ops::TileSelection{ops::TilePattern{2, 3, 2, 1}, ops::Dim::kN, ops::Dim::kK};
  CHECK(AttrToString(mm) == "{trans_a, beta=1, M: channels(2 kept)/3 packed(a,c), tile: tile(2x3,dp=2,o=1) on NxK}");
  CHECK(AttrToString(GatherAttr{ops::RowPattern{1, 2, 0}, std::nullopt}) == "{rows: row(k=1,T=2,o=0)}");
  CHECK(AttrToString(ScatterAttr{std::nullopt, ops::ChannelSet{{1, 2}}, 1.0f}) == "{cols: channels(2 kept), beta=1}");
  CHECK(AttrToString(BiasAttr{}).empty());
  CHECK(AttrToString(ActivationAttr{ops::Activation::kTanh}) == "{tanh}");
  CHECK(AttrToString(SoftmaxXentAttr{-1, 0.5f}) == "{ignore_label=-1, loss_weight=0.5}");
  const ops::ConvGeometry geometry = ops::ConvGeometry::Square(3, 5, 5, 3);
  ops::MatMulAttr conv{.alpha = 1.5f, .conv = ops::ImplicitConv{ops::ImplicitConv::Role::kGradInput, geometry}};
  conv.m = ops::DimSelection{ops::ChannelSet{{0, 1, 2, 3, 4, 5, 6, 7, 8}}, 27};
  CHECK(AttrToString(conv) == "{conv grad-input " + geometry.ToString() + ", alpha=1.5, M: channels(9 kept)/27}");
  CHECK(AttrToString(PoolAttr{ops::ConvGeometry::Square(2, 4, 4, 2, 2), 1.0f}) ==
        "{" + ops::ConvGeometry::Square(2, 4, 4, 2, 2).ToString() + ", beta=1}");
  CHECK(AttrToString(DropoutAttr{0.25f, SiteId{2}}) == "{p=0.25, site $2}");
  CHECK(AttrToString(FillAttr{}) == "{value=0}");

  Graph g;
  const SiteId t = g.AddSite({.name = "tiles", .kind = SiteKind::kTile, .rate = 0.5});
  const SiteId c = g.AddSite({.name = "conv.drop", .kind = SiteKind::kChannel, .width = 3, .rate = 0.5});
  CHECK(SiteUseToString(g, {.site = t, .target = SiteTarget::kMatMulTile, .scale = true}) == "tiles→tile on NxK scale");
  CHECK(SiteUseToString(g, {.site = c, .target = SiteTarget::kMatMulK, .group = 9, .b = ops::Layout::kPacked}) ==
        "conv.drop→K packed(b) group=9");
  CHECK(SiteUseToString(g, {.site = SiteId{4}, .target = SiteTarget::kRows}) == "$4 <no such site>→rows");
}

TEST_CASE("Dumps print broken graphs instead of failing on them", "[graph]") {
  Graph g = MakeMlp();
  g.mutable_node(NodeNamed(g, "fc2.bias")).inputs[1] = ValueId{99};
  g.mutable_node(NodeNamed(g, "fc2.bias")).inputs.push_back(ValueId{-3});
  const std::string text = DumpText(g);
  CHECK(HasLine(text,
                "  #4 fc2.bias (forward): %10 logits [4,3] = BiasAdd(%9 fc2.mm [4,3], %99 <no such value>, "
                "base %-3 <no such value>)"));
  const std::string dot = DumpDot(g);
  CHECK(dot.find("v99") == std::string::npos);
}

TEST_CASE("DumpDot is a well-formed digraph with one edge per operand", "[graph]") {
  Graph g = MakeMlp();
  g.AddValue("odd \"name\\", ValueRole::kInput, {1});  // quotes and backslashes must be escaped
  g.SetSitePattern(SiteNamed(g, "h1.drop"), ops::RowPattern{1, 2, 0});
  REQUIRE(ResolveSiteUses(g).ok());
  const std::string dot = DumpDot(g);
  INFO(dot);
  const std::vector<std::string> lines = Lines(dot);
  REQUIRE(lines.size() > 3);
  CHECK(lines.front() == "digraph sieve {");
  CHECK(lines.back() == "}");

  const std::regex declaration(R"re(  ([vn]\d+) \[(shape=(ellipse|box), [^\n]*label="([^"\\]|\\.)*")\];)re");
  const std::regex edge(R"re(  ([vn]\d+) -> ([vn]\d+)( \[style=dashed, label="base"\])?;)re");
  std::set<std::string> declared;
  std::vector<std::pair<std::string, std::string>> edges;
  int dashed = 0;
  for (size_t i = 1; i + 1 < lines.size(); ++i) {
    const std::string& line = lines[i];
    std::smatch m;
    if (std::regex_match(line, m, declaration)) {
      CHECK(declared.insert(m[1]).second);
    } else if (std::regex_match(line, m, edge)) {
      edges.emplace_back(m[1], m[2]);
      if (m[3].matched) ++dashed;
    } else {
      CHECK((line == "  rankdir=TB;" || line == "  node [fontname=\"Helvetica\", fontsize=10];"));
    }
  }
  CHECK(declared.size() == static_cast<size_t>(g.num_values() + g.num_nodes()));
  size_t operands = 0;
  for (const Node& n : g.nodes()) operands += n.inputs.size() + n.outputs.size();
  CHECK(edges.size() == operands);
  CHECK(dashed == 1);  // fc2.wgrad's base
  for (const auto& [from, to] : edges) {
    CHECK(declared.count(from));
    CHECK(declared.count(to));
    CHECK(from[0] != to[0]);  // values feed nodes, nodes write values
  }
  CHECK(dot.find(R"(odd \"name\\)") != std::string::npos);
  CHECK(dot.find("K: row(k=1,T=2,o=0)/8 packed(a)") != std::string::npos);
}

}  // namespace
}  // namespace sieve::graph
