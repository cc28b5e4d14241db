// Readable dumps of a Graph: a text form (one line per site, value and node) for logs, test
// expectations and the pass manager's dump files, and Graphviz dot for pictures. Both print
// broken graphs too (ids out of range show as "<no such value>"), since the pass manager dumps a
// graph before verifying it.
//
// A node line reads like an assignment, live shapes after the arrow where they differ:
//   #3 fc2.fwd (forward): %9 fc2.mm [4,3] = MatMul(%7 h1 [4,8]→[4,4], %4 fc2.w [3,8])
//       {trans_b, alpha=2, K: row(k=1,T=2,o=1)/8 packed(a)} uses(fc1.drop→K packed(a) scale)
// (on one line).
#pragma once

#include <string>

#include "graph/ir.h"

namespace sieve::graph {

/// The whole graph as text: a header line, then "sites:", "values:" and "nodes:" sections.
std::string DumpText(const Graph& graph);
/// The whole graph as a Graphviz digraph: values are ellipses, nodes boxes (backward ones
/// shaded), base inputs dashed edges.
std::string DumpDot(const Graph& graph);

/// "[4,8]", or "[4,8]→[4,4]" when the live shape differs from the planned one.
std::string ShapesToString(const Value& value);
/// The attribute in braces: "{trans_b, N: row(k=1,T=2,o=1)/8 packed(c)}"; "" for none.
std::string AttrToString(const NodeAttr& attr);
/// "fc1.drop→N packed(c) scale".
std::string SiteUseToString(const Graph& graph, const SiteUse& use);
/// The node's line of DumpText, without indentation.
std::string NodeToString(const Graph& graph, const Node& node);

}  // namespace sieve::graph
