// Text and Graphviz printers of the MatMul IR.
#include "graph/dump.h"

#include <sstream>
#include <vector>

namespace sieve::graph {

namespace {

std::string Compact(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string Float(float x) {
  std::ostringstream os;
  os << x;
  return os.str();
}

// "packed(a,c)" for the operands spanning `d` that store it packed; "" when none does.
std::string PackedOperands(ops::Dim d, ops::Layout a, ops::Layout b, ops::Layout c) {
  std::string packed;
  auto add = [&](bool spans, ops::Layout layout, const char* name) {
    if (spans && layout == ops::Layout::kPacked) packed += (packed.empty() ? "" : ",") + std::string(name);
  };
  add(d != ops::Dim::kN, a, "a");
  add(d != ops::Dim::kM, b, "b");
  add(d != ops::Dim::kK, c, "c");
  return packed.empty() ? packed : "packed(" + packed + ")";
}

std::string Selection(const char* what, const std::optional<ops::IndexPattern>& pattern) {
  return pattern ? std::string(what) + ": " + ops::PatternToString(*pattern) : std::string();
}

std::string Beta(float beta) { return beta != 0.0f ? "beta=" + Float(beta) : std::string(); }

std::vector<std::string> AttrParts(const ops::MatMulAttr& a) {
  std::vector<std::string> parts;
  if (a.conv) parts.push_back(std::string("conv ") + ConvRoleName(a.conv->role) + " " + a.conv->geometry.ToString());
  if (a.trans_a) parts.emplace_back("trans_a");
  if (a.trans_b) parts.emplace_back("trans_b");
  if (a.alpha != 1.0f) parts.push_back("alpha=" + Float(a.alpha));
  parts.push_back(Beta(a.beta));
  for (ops::Dim d : {ops::Dim::kM, ops::Dim::kN, ops::Dim::kK}) {
    const auto& s = a.selection(d);
    if (!s) continue;
    std::string part = ops::DimName(d);
    part += ": " + ops::PatternToString(s->pattern) + "/" + std::to_string(s->extent);
    if (const std::string packed = PackedOperands(d, s->a, s->b, s->c); !packed.empty()) part += " " + packed;
    parts.push_back(std::move(part));
  }
  if (a.tile)
    parts.push_back("tile: " + a.tile->pattern.ToString() + " on " + ops::DimName(a.tile->rows) + "x" +
                    ops::DimName(a.tile->cols));
  return parts;
}
std::vector<std::string> AttrParts(const GatherAttr& a) {
  return {Selection("rows", a.rows), Selection("cols", a.cols)};
}
std::vector<std::string> AttrParts(const ScatterAttr& a) {
  return {Selection("rows", a.rows), Selection("cols", a.cols), Beta(a.beta)};
}
std::vector<std::string> AttrParts(const BiasAttr& a) { return {Selection("cols", a.cols), Beta(a.beta)}; }
std::vector<std::string> AttrParts(const ActivationAttr& a) {
  return {a.kind < ops::Activation::kCount ? ops::ActivationName(a.kind) : "unknown activation"};
}
std::vector<std::string> AttrParts(const SoftmaxXentAttr& a) {
  return {a.ignore_label ? "ignore_label=" + std::to_string(*a.ignore_label) : std::string(),
          a.loss_weight != 1.0f ? "loss_weight=" + Float(a.loss_weight) : std::string()};
}
std::vector<std::string> AttrParts(const PoolAttr& a) { return {a.geometry.ToString(), Beta(a.beta)}; }
std::vector<std::string> AttrParts(const DropoutAttr& a) {
  return {"p=" + Float(a.rate), "site $" + std::to_string(Index(a.site))};
}
std::vector<std::string> AttrParts(const FillAttr& a) { return {"value=" + Float(a.value)}; }
std::vector<std::string> AttrParts(const std::monostate&) { return {}; }

// "%3 fc1.w [8,6]", robust to ids out of range.
std::string OperandToString(const Graph& graph, ValueId id) {
  if (!graph.has_value(id)) return "%" + std::to_string(Index(id)) + " <no such value>";
  const Value& v = graph.value(id);
  return "%" + std::to_string(Index(id)) + " " + v.name + " " + ShapesToString(v);
}

std::string SiteName(const Graph& graph, SiteId id) {
  return graph.has_site(id) ? graph.site(id).name : "$" + std::to_string(Index(id)) + " <no such site>";
}

std::string SiteToString(const DropoutSite& s) {
  std::ostringstream os;
  os << "$" << Index(s.id) << " " << s.name << ": " << SiteKindName(s.kind);
  if (s.kind == SiteKind::kTile) {
    os << " tiles=" << s.tile_rows << "x" << s.tile_cols;
  } else {
    os << " width=" << s.width;
  }
  os << " rate=" << s.rate;
  if (s.scaling == ScaleMode::kNominal) os << " scale=nominal";
  os << " pattern=" << (s.pattern ? ops::PatternToString(*s.pattern) : "none");
  return os.str();
}

std::string ValueToString(const Graph& graph, const Value& v) {
  std::ostringstream os;
  os << "%" << Index(v.id) << " " << v.name << ": " << ValueRoleName(v.role) << " " << DTypeName(v.dtype) << " "
     << ShapesToString(v);
  for (const PackedAxis& p : v.packed) {
    os << " packed(axis " << p.axis << " by " << SiteName(graph, p.site);
    if (p.group != 1) os << " group=" << p.group;
    os << ")";
  }
  if (v.view) {
    os << " view(of %" << Index(v.view->base) << " at " << v.view->offset;
    if (!v.view->strides.empty()) os << " strides " << ShapeToString(v.view->strides);
    os << ")";
  }
  return os.str();
}

// Graphviz double-quoted string contents.
std::string DotEscape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += ch;
  }
  return out;
}

}  // namespace

std::string ShapesToString(const Value& value) {
  return value.live == value.planned ? Compact(value.planned) : Compact(value.planned) + "→" + Compact(value.live);
}

std::string AttrToString(const NodeAttr& attr) {
  const std::vector<std::string> parts = std::visit([](const auto& a) { return AttrParts(a); }, attr);
  std::string out;
  for (const std::string& part : parts)
    if (!part.empty()) out += (out.empty() ? "" : ", ") + part;
  return out.empty() ? out : "{" + out + "}";
}

std::string SiteUseToString(const Graph& graph, const SiteUse& use) {
  std::string out = SiteName(graph, use.site) + "→" + SiteTargetName(use.target);
  if (use.target == SiteTarget::kMatMulTile) {
    out += std::string(" on ") + ops::DimName(use.tile_rows) + "x" + ops::DimName(use.tile_cols);
  } else if (use.target == SiteTarget::kMatMulM || use.target == SiteTarget::kMatMulN ||
             use.target == SiteTarget::kMatMulK) {
    const ops::Dim d = use.target == SiteTarget::kMatMulM   ? ops::Dim::kM
                       : use.target == SiteTarget::kMatMulN ? ops::Dim::kN
                                                            : ops::Dim::kK;
    const std::string packed = PackedOperands(d, use.a, use.b, use.c);
    if (!packed.empty()) out += " " + packed;
  }
  if (use.group != 1) out += " group=" + std::to_string(use.group);
  if (use.scale) out += " scale";
  return out;
}

std::string NodeToString(const Graph& graph, const Node& node) {
  std::ostringstream os;
  os << "#" << Index(node.id) << " " << node.name << " (" << PhaseName(node.phase) << "): ";
  for (size_t i = 0; i < node.outputs.size(); ++i) os << (i ? ", " : "") << OperandToString(graph, node.outputs[i]);
  os << (node.outputs.empty() ? "" : " = ") << OpKindName(node.kind) << "(";
  const int arity = node.kind < OpKind::kCount ? GetOpInfo(node.kind).inputs : static_cast<int>(node.inputs.size());
  for (size_t i = 0; i < node.inputs.size(); ++i) {
    os << (i ? ", " : "") << (static_cast<int>(i) == arity ? "base " : "") << OperandToString(graph, node.inputs[i]);
  }
  os << ")";
  if (const std::string attr = AttrToString(node.attr); !attr.empty()) os << " " << attr;
  if (!node.sites.empty()) {
    os << " uses(";
    for (size_t i = 0; i < node.sites.size(); ++i) os << (i ? ", " : "") << SiteUseToString(graph, node.sites[i]);
    os << ")";
  }
  return os.str();
}

std::string DumpText(const Graph& graph) {
  std::ostringstream os;
  os << "graph: " << graph.num_values() << " values, " << graph.num_nodes() << " nodes, " << graph.num_sites()
     << " sites; attributes " << (graph.attrs_current() ? "current" : "stale") << ", live shapes "
     << (graph.shapes_current() ? "current" : "stale") << "\n";
  os << "sites:\n";
  for (const DropoutSite& s : graph.sites()) os << "  " << SiteToString(s) << "\n";
  os << "values:\n";
  for (const Value& v : graph.values()) os << "  " << ValueToString(graph, v) << "\n";
  os << "nodes:\n";
  for (const Node& n : graph.nodes()) os << "  " << NodeToString(graph, n) << "\n";
  return os.str();
}

std::string DumpDot(const Graph& graph) {
  std::ostringstream os;
  os << "digraph sieve {\n"
     << "  rankdir=TB;\n"
     << "  node [fontname=\"Helvetica\", fontsize=10];\n";
  for (const Value& v : graph.values()) {
    const bool leaf = IsLeafRole(v.role);
    os << "  v" << Index(v.id) << " [shape=ellipse, " << (leaf ? "style=filled, fillcolor=\"#fff3c4\", " : "")
       << "label=\"" << DotEscape("%" + std::to_string(Index(v.id)) + " " + v.name) << "\\n"
       << DotEscape(ShapesToString(v)) << "\"];\n";
  }
  for (const Node& n : graph.nodes()) {
    os << "  n" << Index(n.id) << " [shape=box, style=\"rounded,filled\", fillcolor=\""
       << (n.phase == Phase::kBackward ? "#dde4f0" : "#ffffff") << "\", label=\""
       << DotEscape("#" + std::to_string(Index(n.id)) + " " + n.name) << "\\n"
       << DotEscape(OpKindName(n.kind));
    if (const std::string attr = AttrToString(n.attr); !attr.empty()) os << "\\n" << DotEscape(attr);
    for (const SiteUse& use : n.sites) os << "\\n" << DotEscape(SiteUseToString(graph, use));
    os << "\"];\n";
    const int arity = n.kind < OpKind::kCount ? GetOpInfo(n.kind).inputs : static_cast<int>(n.inputs.size());
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      if (!graph.has_value(n.inputs[i])) continue;
      os << "  v" << Index(n.inputs[i]) << " -> n" << Index(n.id)
         << (static_cast<int>(i) == arity ? " [style=dashed, label=\"base\"]" : "") << ";\n";
    }
    for (ValueId out : n.outputs)
      if (graph.has_value(out)) os << "  n" << Index(n.id) << " -> v" << Index(out) << ";\n";
  }
  os << "}\n";
  return os.str();
}

}  // namespace sieve::graph
