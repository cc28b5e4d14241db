// Graph construction and lookups, and the two steps that make the graph follow the current
// dropout patterns (site-use resolution and live-shape re-planning).
#include "graph/ir.h"

#include <iterator>
#include <sstream>
#include <utility>

#include "framework/suggest.h"

namespace sieve::graph {

namespace {

constexpr const char* kRoleNames[] = {"input",      "label",           "param",          "param_grad",
                                      "activation", "activation_grad", "optimizer_state"};
static_assert(std::size(kRoleNames) == static_cast<size_t>(ValueRole::kCount));
constexpr const char* kPhaseNames[] = {"forward", "backward"};
static_assert(std::size(kPhaseNames) == static_cast<size_t>(Phase::kCount));
constexpr const char* kSiteKindNames[] = {"bernoulli", "row", "tile", "channel"};
static_assert(std::size(kSiteKindNames) == static_cast<size_t>(SiteKind::kCount));

template <typename Id, typename Table>
StatusOr<Id> FindByName(const std::unordered_map<std::string, Id>& index, const Table& table, const char* what,
                        std::string_view name) {
  if (auto it = index.find(std::string(name)); it != index.end()) return it->second;
  std::vector<std::string> names;
  names.reserve(table.size());
  for (const auto& entry : table) names.push_back(entry.name);
  return SIEVE_ERROR(StatusCode::kNotFound,
                     "no " << what << " named '" << name << "'"
                           << (names.empty() ? std::string("; the graph has none") : NearestSuffix(name, names)));
}

// The new attribute of `node` under the current patterns, or why there is none.
StatusOr<NodeAttr> ResolvedAttr(const Graph& graph, const Node& node) {
  NodeAttr attr = node.attr;
  bool scaled = false;
  float alpha = 1.0f;
  for (const SiteUse& use : node.sites) {
    auto fail = [&](const std::string& why) {
      return SIEVE_ERROR(StatusCode::kFailedPrecondition,
                         DescribeNode(node) << ", use of " << SiteTargetName(use.target) << ": " << why);
    };
    if (!graph.has_site(use.site)) return fail("site $" + std::to_string(Index(use.site)) + " does not exist");
    const DropoutSite& site = graph.site(use.site);
    if (!site.pattern) return fail(DescribeSite(site) + " has no pattern this iteration");
    if (Status valid = CheckSitePattern(site); !valid.ok()) return fail(valid.message());
    if (use.group < 1) return fail("group " + std::to_string(use.group) + " must be positive");
    const ops::DropoutPattern& pattern = *site.pattern;
    std::optional<ops::IndexPattern> index;
    if (const auto* row = std::get_if<ops::RowPattern>(&pattern)) index = ExpandPattern(*row, use.group);
    if (const auto* set = std::get_if<ops::ChannelSet>(&pattern)) index = ExpandPattern(*set, use.group);
    const bool wants_tile = use.target == SiteTarget::kMatMulTile;
    if (wants_tile != std::holds_alternative<ops::TilePattern>(pattern))
      return fail(DescribeSite(site) + " has pattern " + ops::PatternToString(pattern) + ", which cannot decide " +
                  SiteTargetName(use.target));
    const int64_t extent = site.width * use.group;

    auto* mm = std::get_if<ops::MatMulAttr>(&attr);
    auto* gather = std::get_if<GatherAttr>(&attr);
    auto* scatter = std::get_if<ScatterAttr>(&attr);
    auto* bias = std::get_if<BiasAttr>(&attr);
    auto wrong_attr = [&] { return fail(std::string("the attribute is ") + AttrName(attr)); };
    switch (use.target) {
      case SiteTarget::kMatMulM:
      case SiteTarget::kMatMulN:
      case SiteTarget::kMatMulK: {
        if (mm == nullptr) return wrong_attr();
        const ops::DimSelection selection{*index, extent, use.a, use.b, use.c};
        (use.target == SiteTarget::kMatMulM ? mm->m : use.target == SiteTarget::kMatMulN ? mm->n : mm->k) = selection;
        break;
      }
      case SiteTarget::kMatMulTile:
        if (mm == nullptr) return wrong_attr();
        mm->tile = ops::TileSelection{std::get<ops::TilePattern>(pattern), use.tile_rows, use.tile_cols};
        break;
      case SiteTarget::kBiasCols:
        if (bias == nullptr) return wrong_attr();
        bias->cols = index;
        break;
      case SiteTarget::kRows:
      case SiteTarget::kCols: {
        const bool rows = use.target == SiteTarget::kRows;
        if (gather != nullptr) {
          (rows ? gather->rows : gather->cols) = index;
        } else if (scatter != nullptr) {
          (rows ? scatter->rows : scatter->cols) = index;
        } else {
          return wrong_attr();
        }
        break;
      }
      case SiteTarget::kCount:
        return fail("invalid target");
    }
    if (use.scale) {
      if (mm == nullptr) return wrong_attr();
      scaled = true;
      alpha *= SiteScale(site);
    }
  }
  if (scaled) std::get<ops::MatMulAttr>(attr).alpha = alpha;
  return attr;
}

// The live shape of `value` under the current patterns, or why there is none.
StatusOr<Shape> LiveShape(const Graph& graph, const Value& value) {
  Shape live = value.planned;
  for (const PackedAxis& p : value.packed) {
    auto fail = [&](const std::string& why) {
      return SIEVE_ERROR(StatusCode::kFailedPrecondition, DescribeValue(value)
                                                              << ", packed along axis " << p.axis << ": " << why);
    };
    if (!graph.has_site(p.site)) return fail("site $" + std::to_string(Index(p.site)) + " does not exist");
    const DropoutSite& site = graph.site(p.site);
    if (p.axis < 0 || p.axis >= static_cast<int>(live.size())) return fail("no such axis");
    if (p.group < 1) return fail("group " + std::to_string(p.group) + " must be positive");
    if (!site.pattern) return fail(DescribeSite(site) + " has no pattern this iteration");
    if (Status valid = CheckSitePattern(site); !valid.ok()) return fail(valid.message());
    const ops::DropoutPattern& pattern = *site.pattern;
    if (const auto* row = std::get_if<ops::RowPattern>(&pattern)) {
      live[p.axis] = ops::KeptCount(ExpandPattern(*row, p.group), value.planned[p.axis]);
    } else if (const auto* set = std::get_if<ops::ChannelSet>(&pattern)) {
      live[p.axis] = ops::KeptCount(ExpandPattern(*set, p.group), value.planned[p.axis]);
    } else {
      return fail(DescribeSite(site) + " has pattern " + ops::PatternToString(pattern) + ", which packs no axis");
    }
  }
  return live;
}

}  // namespace

const char* ValueRoleName(ValueRole role) {
  return role < ValueRole::kCount ? kRoleNames[static_cast<int>(role)] : "?";
}

bool IsLeafRole(ValueRole role) {
  return role == ValueRole::kInput || role == ValueRole::kLabel || role == ValueRole::kParam ||
         role == ValueRole::kOptimizerState;
}

const char* PhaseName(Phase phase) { return phase < Phase::kCount ? kPhaseNames[static_cast<int>(phase)] : "?"; }

const char* SiteKindName(SiteKind kind) {
  return kind < SiteKind::kCount ? kSiteKindNames[static_cast<int>(kind)] : "?";
}

ValueId Graph::AddValue(std::string name, ValueRole role, Shape planned, DType dtype) {
  const ValueId id{num_values()};
  value_by_name_.emplace(name, id);
  Value v;
  v.id = id;
  v.name = std::move(name);
  v.dtype = dtype;
  v.live = planned;
  v.planned = std::move(planned);
  v.role = role;
  values_.push_back(std::move(v));
  views_of_.emplace_back();
  return id;
}

ValueId Graph::AddView(std::string name, ValueRole role, Shape planned, ValueId base, int64_t offset, Shape strides) {
  SIEVE_CHECK(has_value(base), "view '" << name << "' of value %" << Index(base) << ", which does not exist");
  const ValueId id = AddValue(std::move(name), role, std::move(planned), values_[Index(base)].dtype);
  values_[Index(id)].view = ValueView{base, offset, std::move(strides)};
  views_of_[Index(base)].push_back(id);
  return id;
}

ValueId Graph::StorageRoot(ValueId id) const {
  while (value(id).view) id = value(id).view->base;
  return id;
}

int64_t Graph::StorageOffset(ValueId id) const {
  int64_t offset = 0;
  for (; value(id).view; id = value(id).view->base) offset += value(id).view->offset;
  return offset;
}

bool Graph::IsAssembled(ValueId id) const {
  const Value& v = value(id);
  if (IsLeafRole(v.role) || v.producer != kNoNode) return false;
  for (ValueId view : views_of_[Index(id)])
    if (value(view).producer != kNoNode || IsAssembled(view)) return true;
  return false;
}

void Graph::PackValue(ValueId value, SiteId site, int axis, int64_t group) {
  mutable_value(value).packed.push_back(PackedAxis{site, axis, group});
}

NodeId Graph::AddNode(OpKind kind, std::string name, std::vector<ValueId> inputs, std::vector<ValueId> outputs,
                      NodeAttr attr, Phase phase, std::vector<SiteUse> sites) {
  const NodeId id{num_nodes()};
  node_by_name_.emplace(name, id);
  for (ValueId out : outputs)
    if (has_value(out) && values_[Index(out)].producer == kNoNode) values_[Index(out)].producer = id;
  nodes_.push_back(
      Node{id, kind, std::move(name), std::move(inputs), std::move(outputs), std::move(attr), phase, std::move(sites)});
  return id;
}

SiteId Graph::AddSite(DropoutSite site) {
  site.id = SiteId{num_sites()};
  site_by_name_.emplace(site.name, site.id);
  if (site.pattern) ++pattern_epoch_;
  sites_.push_back(std::move(site));
  return sites_.back().id;
}

const Value& Graph::value(ValueId id) const {
  SIEVE_CHECK(has_value(id), "value id %" << Index(id) << " out of range [0, " << num_values() << ")");
  return values_[Index(id)];
}

const Node& Graph::node(NodeId id) const {
  SIEVE_CHECK(has_node(id), "node id #" << Index(id) << " out of range [0, " << num_nodes() << ")");
  return nodes_[Index(id)];
}

const DropoutSite& Graph::site(SiteId id) const {
  SIEVE_CHECK(has_site(id), "site id $" << Index(id) << " out of range [0, " << num_sites() << ")");
  return sites_[Index(id)];
}

Value& Graph::mutable_value(ValueId id) { return const_cast<Value&>(std::as_const(*this).value(id)); }
Node& Graph::mutable_node(NodeId id) { return const_cast<Node&>(std::as_const(*this).node(id)); }

StatusOr<ValueId> Graph::FindValue(std::string_view name) const {
  return FindByName(value_by_name_, values_, "value", name);
}
StatusOr<NodeId> Graph::FindNode(std::string_view name) const {
  return FindByName(node_by_name_, nodes_, "node", name);
}
StatusOr<SiteId> Graph::FindSite(std::string_view name) const {
  return FindByName(site_by_name_, sites_, "dropout site", name);
}

std::vector<NodeId> Graph::Consumers(ValueId value) const {
  std::vector<NodeId> out;
  for (const Node& n : nodes_)
    for (ValueId in : n.inputs)
      if (in == value) {
        out.push_back(n.id);
        break;
      }
  return out;
}

// Why a node at position `at` may not read `id` yet; empty when it may.
std::string Graph::Unavailable(ValueId id, int64_t at) const {
  const Value& v = values_[Index(id)];
  if (IsLeafRole(v.role)) return {};
  if (v.producer != kNoNode) {
    if (!has_node(v.producer)) return "is never produced (role " + std::string(ValueRoleName(v.role)) + ")";
    if (Index(v.producer) < at) return {};
    return "is read before its producer " + DescribeNode(nodes_[Index(v.producer)]);
  }
  if (v.view) {  // a reading view: available with its base
    const std::string why = Unavailable(v.view->base, at);
    return why.empty() ? why : "views " + DescribeValue(values_[Index(v.view->base)]) + ", which " + why;
  }
  bool assembled = false;
  for (ValueId view : views_of_[Index(id)]) {
    if (values_[Index(view)].producer == kNoNode && !IsAssembled(view)) continue;  // reads, does not write
    assembled = true;
    const std::string why = Unavailable(view, at);
    if (!why.empty()) return "is assembled from " + DescribeValue(values_[Index(view)]) + ", which " + why;
  }
  if (assembled) return {};
  return "is never produced (role " + std::string(ValueRoleName(v.role)) + ")";
}

Status Graph::CheckTopologicalOrder() const {
  for (const Node& n : nodes_) {
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      const ValueId in = n.inputs[i];
      SIEVE_ENSURE(has_value(in), StatusCode::kInvalidArgument,
                   DescribeNode(n) << ": input " << i << " is %" << Index(in) << ", not a value of the graph");
      const std::string why = Unavailable(in, Index(n.id));
      SIEVE_ENSURE(why.empty(), StatusCode::kInvalidArgument,
                   DescribeNode(n) << ": input " << i << " " << DescribeValue(values_[Index(in)]) << " " << why);
    }
  }
  return Status::Ok();
}

void Graph::SetSitePattern(SiteId id, std::optional<ops::DropoutPattern> pattern) {
  SIEVE_CHECK(has_site(id), "site id $" << Index(id) << " out of range [0, " << num_sites() << ")");
  sites_[Index(id)].pattern = std::move(pattern);
  ++pattern_epoch_;
}

ops::IndexPattern ExpandPattern(const ops::IndexPattern& pattern, int64_t group) {
  SIEVE_CHECK(group >= 1, "pattern group " << group << " must be positive");
  if (group == 1) return pattern;
  if (const auto* row = std::get_if<ops::RowPattern>(&pattern))
    return ops::RowPattern{row->keep * group, row->period * group, row->offset * group};
  ops::ChannelSet expanded;
  const auto& kept = std::get<ops::ChannelSet>(pattern).kept;
  expanded.kept.reserve(kept.size() * static_cast<size_t>(group));
  for (int64_t c : kept)
    for (int64_t r = 0; r < group; ++r) expanded.kept.push_back(c * group + r);
  return expanded;
}

Status CheckSitePattern(const DropoutSite& site) {
  if (!site.pattern) return Status::Ok();
  const ops::DropoutPattern& pattern = *site.pattern;
  auto fail = [&](const std::string& why) {
    return SIEVE_ERROR(StatusCode::kInvalidArgument,
                       DescribeSite(site) << " has pattern " << ops::PatternToString(pattern) << ": " << why);
  };
  std::string why;
  switch (site.kind) {
    case SiteKind::kRow:
      if (!std::holds_alternative<ops::RowPattern>(pattern)) return fail("a row site needs a row pattern");
      why = ops::ValidatePattern(ops::IndexPattern(std::get<ops::RowPattern>(pattern)), site.width);
      break;
    case SiteKind::kChannel: {
      if (!std::holds_alternative<ops::ChannelSet>(pattern)) return fail("a channel site needs a channel set");
      const ops::ChannelSet& set = std::get<ops::ChannelSet>(pattern);
      if (set.kept.empty()) return fail("a channel site must keep at least one channel");
      why = ops::ValidatePattern(ops::IndexPattern(set), site.width);
      break;
    }
    case SiteKind::kTile: {
      if (!std::holds_alternative<ops::TilePattern>(pattern)) return fail("a tile site needs a tile pattern");
      const ops::TilePattern& tile = std::get<ops::TilePattern>(pattern);
      if (tile.tile_rows != site.tile_rows || tile.tile_cols != site.tile_cols)
        return fail("the site's tiles are " + std::to_string(site.tile_rows) + "x" + std::to_string(site.tile_cols));
      why = ops::ValidatePattern(tile);
      break;
    }
    case SiteKind::kBernoulli:
      return fail("a Bernoulli site draws masks, never a pattern");
    case SiteKind::kCount:
      return fail("invalid site kind");
  }
  if (!why.empty()) return fail(why);
  return Status::Ok();
}

float SiteScale(const DropoutSite& site) {
  if (site.scaling == ScaleMode::kNominal) return static_cast<float>(1.0 / (1.0 - site.rate));
  SIEVE_CHECK(site.pattern.has_value(), DescribeSite(site) << " has no pattern to scale by");
  const ops::DropoutPattern& pattern = *site.pattern;
  double keep = 1.0;
  if (const auto* row = std::get_if<ops::RowPattern>(&pattern)) {
    keep = static_cast<double>(row->keep) / static_cast<double>(row->period);
  } else if (const auto* tile = std::get_if<ops::TilePattern>(&pattern)) {
    keep = 1.0 / static_cast<double>(tile->dp);
  } else {
    const auto& kept = std::get<ops::ChannelSet>(pattern).kept;
    SIEVE_CHECK(!kept.empty() && site.width > 0, DescribeSite(site) << " keeps no channel");
    keep = static_cast<double>(kept.size()) / static_cast<double>(site.width);
  }
  return static_cast<float>(1.0 / keep);
}

Status ResolveSiteUses(Graph& graph) {
  // All or nothing: compute every new attribute first, so a failure leaves the graph as it was.
  std::vector<std::pair<NodeId, NodeAttr>> resolved;
  for (const Node& node : graph.nodes()) {
    if (node.sites.empty()) continue;
    SIEVE_ASSIGN_OR_RETURN(NodeAttr attr, ResolvedAttr(graph, node));
    resolved.emplace_back(node.id, std::move(attr));
  }
  for (auto& [id, attr] : resolved) graph.nodes_[Index(id)].attr = std::move(attr);
  graph.attrs_epoch_ = graph.pattern_epoch_;
  return Status::Ok();
}

Status ResolveLiveShapes(Graph& graph) {
  std::vector<Shape> live;
  live.reserve(graph.values().size());
  for (const Value& value : graph.values()) {
    SIEVE_ASSIGN_OR_RETURN(Shape shape, LiveShape(graph, value));
    live.push_back(std::move(shape));
  }
  for (size_t i = 0; i < live.size(); ++i) graph.values_[i].live = std::move(live[i]);
  graph.shapes_epoch_ = graph.pattern_epoch_;
  return Status::Ok();
}

std::string DescribeNode(const Node& node) {
  std::ostringstream os;
  os << "node '" << node.name << "' (#" << Index(node.id) << " " << OpKindName(node.kind) << ")";
  return os.str();
}

std::string DescribeValue(const Value& value) {
  std::ostringstream os;
  os << "value '" << value.name << "' (%" << Index(value.id) << " " << DTypeName(value.dtype) << " "
     << ShapeToString(value.planned);
  if (value.live != value.planned) os << " live " << ShapeToString(value.live);
  os << ")";
  return os.str();
}

std::string DescribeSite(const DropoutSite& site) {
  std::ostringstream os;
  os << "site '" << site.name << "' ($" << Index(site.id) << " " << SiteKindName(site.kind) << ")";
  return os.str();
}

}  // namespace sieve::graph
