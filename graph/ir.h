// The MatMul IR: the graph the per-iteration passes transform and the executor runs.
//
// After lowering, a network is a list of nodes in execution order. Every GEMM of forward and
// backward is a MatMul node (attribute ops::MatMulAttr); every other node is one of the few helper
// kernels (op_kind.h). Nodes read and write Values, the tensors of the graph; each value is
// produced by exactly one node (SSA), or comes from outside (inputs, labels, parameters,
// optimizer state).
//
// Dropout sites are first-class. The graph keeps a table of DropoutSites; each iteration a pass
// draws every site's pattern (SetSitePattern), and then two steps make the graph follow it:
//
//   ResolveSiteUses    writes each site's pattern into the attributes of the nodes that use it
//                      (a MatMul's N selection, a bias's columns, ...);
//   ResolveLiveShapes  re-plans the live shape of every value a site packs.
//
// Shapes: a value's PLANNED shape is its dense maximum, what its buffer is allocated for once;
// its LIVE shape is what this iteration stores, smaller along an axis that a site's pattern
// packs. Changing patterns never changes a planned shape, so it never allocates.
//
// Views: a value may live inside another value's buffer (Value::view): an LSTM time step is a
// strided row block of its [B, T, H] sequence, a flattened batch is its image batch reshaped. A
// view with a producer WRITES into the base's buffer (the base is then assembled from such views
// and has no producer of its own); a view without a producer READS the base once it is available.
// Neither copies anything.
//
// This file is not the verifier (verify.h), the printer (dump.h) or the pass manager (pass.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "framework/device.h"
#include "framework/status.h"
#include "framework/tensor.h"
#include "graph/attrs.h"
#include "graph/op_kind.h"
#include "ops/matmul/pattern.h"

namespace sieve::graph {

// ---------------------------------------------------------------------------------------------
// Values

/// What a value is for. Inputs, labels, parameters and optimizer state come from outside the
/// graph (IsLeafRole); every other value is produced by exactly one node.
enum class ValueRole : uint8_t {
  kInput,           ///< a batch input (images, token ids)
  kLabel,           ///< targets of a loss (int32)
  kParam,           ///< a trainable parameter
  kParamGrad,       ///< the gradient of a parameter
  kActivation,      ///< an intermediate of the forward
  kActivationGrad,  ///< the gradient of an activation
  kOptimizerState,  ///< momentum, Adam moments
  kCount,
};
/// "input", "label", "param", "param_grad", "activation", "activation_grad", "optimizer_state".
const char* ValueRoleName(ValueRole role);
bool IsLeafRole(ValueRole role);

/// One axis of a value that a dropout site packs: only the kept units are stored along `axis`,
/// in ascending order. Each unit of the site spans `group` consecutive indices of the axis, so
/// planned[axis] == site width * group.
struct PackedAxis {
  SiteId site{};
  int axis = 0;
  int64_t group = 1;
};

/// Where a view value lives inside its base's buffer.
struct ValueView {
  ValueId base{};   ///< the value whose buffer holds this one (itself possibly a view)
  int64_t offset = 0;  ///< in elements, from the start of the base's first element
  /// Element strides per axis, rank of the value's shape; empty: contiguous over the LIVE shape
  /// (a reshape of a packed value stays dense).
  Shape strides;
};

/// A tensor of the graph.
struct Value {
  ValueId id{};
  std::string name;  ///< unique: "fc1.w", "fc1.w.grad", "fc1.out", "fc1.out.grad"
  DType dtype = DType::kFloat32;
  Shape planned;  ///< the dense maximum; buffers are planned once for it
  Shape live;     ///< this iteration's; equals planned except along packed axes
  ValueRole role = ValueRole::kActivation;
  NodeId producer = kNoNode;       ///< the node that writes it; kNoNode for leaf roles
  std::vector<PackedAxis> packed;  ///< axes a site packs (at most one entry per axis)
  std::optional<ValueView> view;   ///< set when the value lives in another value's buffer
};

// ---------------------------------------------------------------------------------------------
// Nodes

enum class Phase : uint8_t { kForward, kBackward, kCount };
/// "forward", "backward".
const char* PhaseName(Phase phase);

/// One kernel call. Operands are in the order of the kind's row in op_kind.h; a base input (the
/// prior value of the output that the call updates, see BaseInput) comes last.
struct Node {
  NodeId id{};
  OpKind kind = OpKind::kCopy;
  std::string name;  ///< unique: "fc1.fwd", "fc1.dgrad", "fc1.wgrad"
  std::vector<ValueId> inputs;
  std::vector<ValueId> outputs;
  NodeAttr attr;
  Phase phase = Phase::kForward;
  std::vector<SiteUse> sites;  ///< dropout sites whose patterns decide parts of `attr`

  /// True when the node has a base input (one input more than its kind's arity).
  bool has_base() const { return static_cast<int>(inputs.size()) > GetOpInfo(kind).inputs; }
};

// ---------------------------------------------------------------------------------------------
// Dropout sites

/// The pattern family of a site (SPEC 2.2, 2.3, 3) or plain Bernoulli dropout.
enum class SiteKind : uint8_t {
  kBernoulli,  ///< element-wise dropout (DropoutAttr); draws a mask, never a pattern
  kRow,        ///< row (neuron) patterns, ops::RowPattern, over `width` units
  kTile,       ///< tile (synapse) patterns, ops::TilePattern, over a weight's tile grid
  kChannel,    ///< kept input feature maps, ops::ChannelSet, over `width` channels
  kCount,
};
/// "bernoulli", "row", "tile", "channel".
const char* SiteKindName(SiteKind kind);

/// How kept values are scaled (SPEC 2.4).
enum class ScaleMode : uint8_t {
  kPattern,  ///< by the current pattern's own 1 / keep fraction (unbiased given the pattern)
  kNominal,  ///< by the site's nominal 1 / (1 - rate)
  kCount,
};

/// Where a row or tile site's per-iteration pattern comes from (SPEC 2.5; graph/pattern_search.h).
enum class PatternFamily : uint8_t {
  kSearched,  ///< drawn from the distribution the pattern-distribution search finds
  kFixed,     ///< always the one candidate whose rate is nearest the target, at a uniform offset
};

/// The pattern-search settings of a row or tile site (graph/pattern_search.h).
struct PatternSearchSpec {
  PatternFamily family = PatternFamily::kSearched;
  int64_t max_period = 16;   ///< D: row / tile dp in 1..D; for generalized row patterns, Tmax
  bool generalized = false;  ///< row sites: candidates (k, T), 1 <= k <= T <= max_period (SPEC 2.2 beyond)
};

/// A place in the network where dropout applies.
struct DropoutSite {
  SiteId id{};
  std::string name;  ///< unique: "fc1.out.drop"
  SiteKind kind = SiteKind::kRow;
  int64_t width = 0;       ///< units (row, Bernoulli) or input channels (channel); unused by tile sites
  double rate = 0.0;       ///< the target drop rate p, 0 <= p < 1
  int64_t tile_rows = 32;  ///< tile sites: the tile shape every pattern of the site uses
  int64_t tile_cols = 32;
  ScaleMode scaling = ScaleMode::kPattern;
  /// This iteration's pattern; set by a pass through Graph::SetSitePattern. Bernoulli sites
  /// never have one.
  std::optional<ops::DropoutPattern> pattern;
  /// Row and tile sites: how PatternSamplingPass (graph/pattern_pass.h) chooses the patterns.
  PatternSearchSpec search;
};

// ---------------------------------------------------------------------------------------------
// The graph

/// Values, nodes (in execution order) and dropout sites. Building is permissive: Add* record
/// what they are given and the verifier (verify.h) reports what is wrong, naming the node.
class Graph {
 public:
  /// A value with live shape = planned shape and no producer (AddNode sets it).
  ValueId AddValue(std::string name, ValueRole role, Shape planned, DType dtype = DType::kFloat32);
  /// A float32 parameter.
  ValueId AddParam(std::string name, Shape shape) {
    return AddValue(std::move(name), ValueRole::kParam, std::move(shape));
  }
  /// A view of `base` (see ValueView): its shape `planned`, `offset` elements into base, with
  /// `strides` (empty: contiguous). Views of leaf values are leaves of the same role.
  ValueId AddView(std::string name, ValueRole role, Shape planned, ValueId base, int64_t offset = 0,
                  Shape strides = {});
  /// Marks `axis` of `value` as packed by `site` (see PackedAxis).
  void PackValue(ValueId value, SiteId site, int axis, int64_t group = 1);
  /// Appends a node; outputs in range that have no producer yet record it.
  NodeId AddNode(OpKind kind, std::string name, std::vector<ValueId> inputs, std::vector<ValueId> outputs,
                 NodeAttr attr = {}, Phase phase = Phase::kForward, std::vector<SiteUse> sites = {});
  /// Appends a site (its id field is assigned); a pattern it carries counts as SetSitePattern.
  SiteId AddSite(DropoutSite site);

  int num_values() const { return static_cast<int>(values_.size()); }
  int num_nodes() const { return static_cast<int>(nodes_.size()); }
  int num_sites() const { return static_cast<int>(sites_.size()); }
  bool has_value(ValueId id) const { return Index(id) >= 0 && Index(id) < num_values(); }
  bool has_node(NodeId id) const { return Index(id) >= 0 && Index(id) < num_nodes(); }
  bool has_site(SiteId id) const { return Index(id) >= 0 && Index(id) < num_sites(); }

  // Lookups by id abort on an id out of range (a programming error); check with has_*.
  const Value& value(ValueId id) const;
  const Node& node(NodeId id) const;
  const DropoutSite& site(SiteId id) const;
  /// Passes edit values and nodes in place. Site patterns change only through SetSitePattern.
  Value& mutable_value(ValueId id);
  Node& mutable_node(NodeId id);
  const std::vector<Value>& values() const { return values_; }
  const std::vector<Node>& nodes() const { return nodes_; }
  const std::vector<DropoutSite>& sites() const { return sites_; }

  /// Lookups by name; the error names the missing name and the nearest existing one.
  StatusOr<ValueId> FindValue(std::string_view name) const;
  StatusOr<NodeId> FindNode(std::string_view name) const;
  StatusOr<SiteId> FindSite(std::string_view name) const;

  /// The nodes that read `value` (as any input, the base included), in node order.
  std::vector<NodeId> Consumers(ValueId value) const;
  /// The value whose buffer `id` lives in: follows views to a value that is not one.
  ValueId StorageRoot(ValueId id) const;
  /// The offset of `id` in its storage root's buffer, in elements (the sum along the view chain).
  int64_t StorageOffset(ValueId id) const;
  /// True for a non-leaf value without a producer that views write into (an assembled value).
  bool IsAssembled(ValueId id) const;
  /// OK when every node reads only values that are available: leaves, values produced by earlier
  /// nodes, views without a producer of an available base, and assembled values once every view
  /// that writes into them has been produced. Otherwise the error names the first node that
  /// reads a value before (or without) its producer.
  Status CheckTopologicalOrder() const;

  /// Sets this iteration's pattern of a site (nullopt clears it). The attributes and live shapes
  /// are stale until ResolveSiteUses and ResolveLiveShapes have run.
  void SetSitePattern(SiteId id, std::optional<ops::DropoutPattern> pattern);
  /// Do the node attributes reflect the current site patterns? (True before any pattern is set.)
  bool attrs_current() const { return attrs_epoch_ == pattern_epoch_; }
  /// Do the live shapes reflect the current site patterns?
  bool shapes_current() const { return shapes_epoch_ == pattern_epoch_; }

 private:
  std::string Unavailable(ValueId id, int64_t at) const;

  friend Status ResolveSiteUses(Graph& graph);
  friend Status ResolveLiveShapes(Graph& graph);

  std::vector<Value> values_;
  std::vector<Node> nodes_;
  std::vector<DropoutSite> sites_;
  std::unordered_map<std::string, ValueId> value_by_name_;  // first of equal names
  std::unordered_map<std::string, NodeId> node_by_name_;
  std::unordered_map<std::string, SiteId> site_by_name_;
  std::vector<std::vector<ValueId>> views_of_;  // per value: the views whose base it is
  // Each SetSitePattern starts a new epoch; the resolution steps record the epoch they saw.
  uint64_t pattern_epoch_ = 0;
  uint64_t attrs_epoch_ = 0;
  uint64_t shapes_epoch_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Following the patterns

/// The pattern over `group`-times finer indices that keeps index i iff it keeps unit i / group:
/// row(k, T, o) becomes row(k*g, T*g, o*g); a channel set {c} becomes {c*g .. c*g + g-1}.
ops::IndexPattern ExpandPattern(const ops::IndexPattern& pattern, int64_t group);

/// OK when the site has no pattern, or one of its kind that is well-formed for it: a row pattern
/// or a non-empty channel set valid for `width`, a tile pattern with the site's tile shape.
/// Bernoulli sites never have a pattern. The error names the site and the pattern.
Status CheckSitePattern(const DropoutSite& site);

/// The factor kept values of a site are scaled by this iteration (SPEC 2.4): 1 / keep fraction
/// of its current pattern (row k/T, tile 1/dp, channel kept/width), or 1 / (1 - rate) for
/// ScaleMode::kNominal. A kPattern site must have a pattern that passes CheckSitePattern.
float SiteScale(const DropoutSite& site);

/// Writes every site's current pattern into the attributes of the nodes that use it:
///   kMatMulM/N/K  MatMulAttr::m/n/k = DimSelection{ExpandPattern(pattern, group),
///                 width * group, use.a, use.b, use.c}
///   kMatMulTile   MatMulAttr::tile = TileSelection{pattern, use.tile_rows, use.tile_cols}
///   kBiasCols     BiasAttr::cols, kRows / kCols the Gather / Scatter rows / cols (expanded)
/// and sets the alpha of each MatMul with scaling uses to the product of their SiteScale. Fails,
/// changing nothing, with a Status naming the node and the site when a site has no current
/// pattern, a pattern failing CheckSitePattern, or a pattern or attribute of the wrong type.
Status ResolveSiteUses(Graph& graph);

/// Sets every value's live shape: planned, except along packed axes, where it is the kept count
/// of the site's expanded pattern. Fails, changing nothing, naming the value and the site when
/// the site has no current (valid, row or channel) pattern or the axis does not exist.
Status ResolveLiveShapes(Graph& graph);

/// "node 'fc1.fwd' (#0 MatMul)", for messages.
std::string DescribeNode(const Node& node);
/// "value 'fc1.out' (%4 float32 [4, 8])", for messages.
std::string DescribeValue(const Value& value);
/// "site 'fc1.drop' ($0 row)", for messages.
std::string DescribeSite(const DropoutSite& site);

}  // namespace sieve::graph
