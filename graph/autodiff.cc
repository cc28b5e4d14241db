// AppendBackward: the reverse walk over the forward nodes, the gradient bookkeeping (partial sums,
// accumulation, views, names) and the GradContext the rules of graph/grad/ work through. The rules
// themselves are in graph/grad/*.cc.
#include "graph/autodiff.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "graph/grad/rules.h"

namespace sieve::graph {

namespace {

constexpr StatusCode kInvalid = StatusCode::kInvalidArgument;
constexpr StatusCode kUnimplemented = StatusCode::kUnimplemented;
constexpr StatusCode kInternal = StatusCode::kInternal;

// The packed axes of a value as comparable tuples.
std::vector<std::tuple<int, int32_t, int64_t>> Packing(const Value& v) {
  std::vector<std::tuple<int, int32_t, int64_t>> p;
  for (const PackedAxis& a : v.packed) p.emplace_back(a.axis, Index(a.site), a.group);
  std::sort(p.begin(), p.end());
  return p;
}

// Stored densely in row-major order over its own shape (live shape for a packed value).
bool Dense(const Value& v) {
  return !v.view || v.view->strides.empty() || v.view->strides == ContiguousStrides(v.planned);
}

Status Prefixed(const std::string& prefix, const Status& status) {
  return status.ok() ? status : Status(status.code(), prefix + status.message());
}

}  // namespace

/// The state of one AppendBackward call. Per-value tables cover the values that existed when it
/// started (the forward values); values it creates are gradients.
class AutodiffState {
 public:
  AutodiffState(Graph& graph, const std::vector<CustomGradient>& custom)
      : g_(graph),
        custom_(custom),
        forward_values_(graph.num_values()),
        forward_nodes_(graph.num_nodes()),
        needs_grad_(forward_values_, false),
        produced_needs_(forward_values_, false),
        reading_views_(forward_values_),
        writing_views_(forward_values_),
        partial_(forward_values_),
        complete_(forward_values_, false),
        flows_(forward_values_, false),
        expected_(forward_values_, 0),
        made_(forward_values_, 0),
        region_(forward_nodes_, -1),
        loss_(forward_nodes_, false) {}

  Status Prepare(const std::vector<NodeId>& loss_nodes);
  Status Walk();
  StatusOr<Gradients> Finish();

  // GradContext's implementation.
  Graph& graph() { return g_; }
  std::optional<ValueId> GradOf(ValueId v);
  bool NeedsGrad(ValueId v) const { return IsForward(v) && needs_grad_[Index(v)]; }
  ValueId NewGrad(ValueId v);
  Status AddGrad(ValueId v, ValueId contribution);
  ValueId AccumulationBase(ValueId v);
  NodeId Emit(OpKind kind, const std::string& name, std::vector<ValueId> inputs, std::vector<ValueId> outputs,
              NodeAttr attr, std::vector<SiteUse> sites);

 private:
  // One step of the reverse walk: a node, or a custom region (at its first node).
  struct Step {
    NodeId node = kNoNode;
    int region = -1;
  };

  bool IsForward(ValueId v) const { return Index(v) >= 0 && Index(v) < forward_values_; }
  bool IsRootParam(ValueId v) const {
    const Value& value = g_.value(v);
    return value.role == ValueRole::kParam && !value.view && value.dtype == DType::kFloat32;
  }
  bool ComputeNeedsGrad(ValueId v) const;
  bool FlowsInto(ValueId v) const;
  bool HasGrad(ValueId v) const;
  std::vector<ValueId> RegionOutputs(int region) const;
  std::vector<ValueId> RegionInputs(int region) const;
  Status CheckRegionSpan(int region) const;
  Status RunStep(const Step& step);
  Status Flush(ValueId v);
  Status Accumulate(ValueId v, ValueId contribution);
  bool Ownable(ValueId grad) const;
  bool CanRewrite(ValueId prev, ValueId contribution) const;
  bool IsViewed(ValueId v) const;
  // The name and role of the next gradient value of `v` ("<v>.grad", "<v>.grad.<k>").
  std::pair<std::string, ValueRole> NextGradName(ValueId v);
  ValueId LikeValue(ValueId like, const std::string& name, ValueRole role);
  std::string UniqueValueName(const std::string& base);
  std::string UniqueNodeName(const std::string& base);
  bool ValueNameTaken(const std::string& name);
  void SyncNames();

  Graph& g_;
  const std::vector<CustomGradient>& custom_;
  const int forward_values_;
  const int forward_nodes_;
  std::vector<bool> needs_grad_;      // per forward value
  std::vector<bool> produced_needs_;  // per forward value: its producer has an input that NeedsGrad
  std::vector<std::vector<ValueId>> reading_views_, writing_views_;  // per forward value: views of it
  std::vector<std::optional<ValueId>> partial_;                      // per forward value: gradient so far
  std::vector<bool> complete_;             // per forward value: GradOf has flushed its views and returned
  std::vector<bool> flows_;                // per forward value: the pre-walk predicts a direct contribution
  std::vector<int> expected_;              // per forward value: predicted contributions (views included)
  std::vector<int> made_;                  // per forward value: gradient values named so far
  std::vector<int> region_;                // per forward node: its custom region, -1 for none
  std::vector<bool> loss_;                 // per forward node
  std::vector<std::pair<int, int>> span_;  // per region: first and last node index
  std::vector<Step> steps_;
  std::unordered_map<int32_t, int> holders_;  // gradient value -> forward values whose partial it is
  Status deferred_;                           // an error GradOf could not return
  std::unordered_set<std::string> value_names_, node_names_;
  int value_names_seen_ = 0, node_names_seen_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Preparation: losses, regions, NeedsGrad, the walk order and the predicted contributions.

Status AutodiffState::Prepare(const std::vector<NodeId>& loss_nodes) {
  SIEVE_ENSURE(!loss_nodes.empty(), kInvalid, "AppendBackward needs at least one loss node");
  for (NodeId id : loss_nodes) {
    SIEVE_ENSURE(Index(id) >= 0 && Index(id) < forward_nodes_, kInvalid,
                 "loss node #" << Index(id) << " is not a node of the graph (" << forward_nodes_ << " nodes)");
    const Node& n = g_.node(id);
    SIEVE_ENSURE(n.kind == OpKind::kSoftmaxXent && n.phase == Phase::kForward, kInvalid,
                 DescribeNode(n) << " is not a forward SoftmaxXent node, so it cannot be a loss");
    const float weight = std::get<SoftmaxXentAttr>(n.attr).loss_weight;
    SIEVE_ENSURE(weight != 0.0f, kInvalid,
                 DescribeNode(n) << " has loss weight 0 (a metric); only weighted losses are differentiated");
    loss_[Index(id)] = true;
  }

  span_.assign(custom_.size(), {forward_nodes_, -1});
  for (size_t r = 0; r < custom_.size(); ++r) {
    const CustomGradient& c = custom_[r];
    SIEVE_ENSURE(!c.nodes.empty(), kInvalid, "custom gradient '" << c.name << "' covers no nodes");
    SIEVE_ENSURE(static_cast<bool>(c.emit), kInvalid, "custom gradient '" << c.name << "' has no emit function");
    for (NodeId id : c.nodes) {
      SIEVE_ENSURE(Index(id) >= 0 && Index(id) < forward_nodes_ && g_.node(id).phase == Phase::kForward, kInvalid,
                   "custom gradient '" << c.name << "' names node #" << Index(id) << ", not a forward node");
      const Node& n = g_.node(id);
      SIEVE_ENSURE(!loss_[Index(id)], kInvalid,
                   "custom gradient '" << c.name << "' covers the loss node " << DescribeNode(n));
      const int other = region_[Index(id)];
      SIEVE_ENSURE(
          other < 0, kInvalid,
          "custom gradients '" << custom_[other].name << "' and '" << c.name << "' both cover " << DescribeNode(n));
      region_[Index(id)] = static_cast<int>(r);
      span_[r].first = std::min(span_[r].first, Index(id));
      span_[r].second = std::max(span_[r].second, Index(id));
    }
  }

  for (const Value& v : g_.values()) {
    if (!v.view) continue;
    (v.producer == kNoNode ? reading_views_ : writing_views_)[Index(v.view->base)].push_back(v.id);
  }
  for (int i = 0; i < forward_nodes_; ++i) {
    const Node& n = g_.node(NodeId{i});
    if (n.phase != Phase::kForward) continue;
    bool needs = false;
    for (ValueId in : n.inputs) needs = needs || ComputeNeedsGrad(in);
    for (ValueId out : n.outputs) produced_needs_[Index(out)] = needs;
  }
  for (int i = 0; i < forward_values_; ++i) needs_grad_[i] = ComputeNeedsGrad(ValueId{i});
  for (size_t r = 0; r < custom_.size(); ++r) SIEVE_RETURN_IF_ERROR(CheckRegionSpan(static_cast<int>(r)));

  for (int i = forward_nodes_ - 1; i >= 0; --i) {
    const Node& n = g_.node(NodeId{i});
    if (n.phase != Phase::kForward) continue;
    const int r = region_[i];
    if (r < 0) {
      steps_.push_back({n.id, -1});
    } else if (i == span_[r].first) {
      steps_.push_back({kNoNode, r});
    }
  }

  // Predict which values receive contributions, and how many, by running the walk's decisions on
  // flags. Only the count of each parameter's contributions is used: one contribution is named
  // "<param>.grad" directly; several are summed into a partial that is copied to "<param>.grad".
  auto contribute = [&](ValueId v) {
    flows_[Index(v)] = true;
    ++expected_[Index(v)];
  };
  for (const Step& step : steps_) {
    if (step.region >= 0) {
      bool out = false, in = false;
      for (ValueId v : RegionOutputs(step.region)) out = out || FlowsInto(v);
      const std::vector<ValueId> inputs = RegionInputs(step.region);
      for (ValueId v : inputs) in = in || NeedsGrad(v);
      if (out && in)
        for (ValueId v : inputs)
          if (NeedsGrad(v)) contribute(v);
      continue;
    }
    const Node& n = g_.node(step.node);
    if (loss_[Index(n.id)]) {
      if (NeedsGrad(n.inputs[0])) contribute(n.inputs[0]);
      continue;
    }
    bool out = false, in = false;
    for (ValueId v : n.outputs) out = out || FlowsInto(v);
    for (ValueId v : n.inputs) in = in || NeedsGrad(v);
    if (out && in)
      for (ValueId v : n.inputs)
        if (NeedsGrad(v)) contribute(v);
  }
  for (int i = 0; i < forward_values_; ++i)
    for (ValueId u : reading_views_[i])
      if (FlowsInto(u)) ++expected_[i];
  return Status::Ok();
}

bool AutodiffState::ComputeNeedsGrad(ValueId v) const {
  const Value& value = g_.value(v);
  if (value.dtype != DType::kFloat32) return false;
  if (IsRootParam(v)) return true;
  if (value.view && value.producer == kNoNode) return ComputeNeedsGrad(value.view->base);
  if (value.producer == kNoNode && !IsLeafRole(value.role)) {  // assembled from writing views
    for (ValueId w : writing_views_[Index(v)])
      if (ComputeNeedsGrad(w)) return true;
    return false;
  }
  return produced_needs_[Index(v)];
}

bool AutodiffState::FlowsInto(ValueId v) const {
  if (flows_[Index(v)]) return true;
  for (ValueId u : reading_views_[Index(v)])
    if (FlowsInto(u)) return true;
  const Value& value = g_.value(v);
  return value.view && value.producer != kNoNode && FlowsInto(value.view->base);
}

bool AutodiffState::HasGrad(ValueId v) const {
  if (partial_[Index(v)]) return true;
  for (ValueId u : reading_views_[Index(v)])
    if (HasGrad(u)) return true;
  const Value& value = g_.value(v);
  return value.view && value.producer != kNoNode && HasGrad(value.view->base);
}

std::vector<ValueId> AutodiffState::RegionOutputs(int region) const {
  std::vector<ValueId> out;
  for (NodeId id : custom_[region].nodes)
    for (ValueId v : g_.node(id).outputs) out.push_back(v);
  return out;
}

std::vector<ValueId> AutodiffState::RegionInputs(int region) const {
  std::vector<ValueId> in;
  for (NodeId id : custom_[region].nodes)
    for (ValueId v : g_.node(id).inputs) {
      const NodeId p = g_.value(v).producer;
      if (p == kNoNode || region_[Index(p)] != region) in.push_back(v);
    }
  return in;
}

// The region's backward runs once, when the walk reaches its first node, so a value its nodes
// read must not come from a node between its first and last node that is outside the region (the
// walk would differentiate that node before the region has produced its gradient).
Status AutodiffState::CheckRegionSpan(int region) const {
  const auto [first, last] = span_[region];
  for (NodeId id : custom_[region].nodes)
    for (ValueId in : g_.node(id).inputs) {
      ValueId root = in;
      while (g_.value(root).view && g_.value(root).producer == kNoNode) root = g_.value(root).view->base;
      const NodeId p = g_.value(root).producer;
      if (p == kNoNode || region_[Index(p)] == region || !NeedsGrad(in)) continue;
      SIEVE_ENSURE(Index(p) < first || Index(p) > last, kInvalid,
                   "custom gradient '" << custom_[region].name << "': " << DescribeNode(g_.node(id)) << " reads "
                                       << DescribeValue(g_.value(in)) << ", which " << DescribeNode(g_.node(p))
                                       << " produces inside the region's span (#" << first << "..#" << last
                                       << ") but outside the region");
    }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// The walk.

Status AutodiffState::Walk() {
  for (const Step& step : steps_) {
    SIEVE_RETURN_IF_ERROR(RunStep(step));
    SIEVE_RETURN_IF_ERROR(deferred_);
  }
  return Status::Ok();
}

Status AutodiffState::RunStep(const Step& step) {
  if (step.region >= 0) {
    const CustomGradient& c = custom_[step.region];
    bool out = false, in = false;
    for (ValueId v : RegionOutputs(step.region)) out = out || HasGrad(v);
    for (ValueId v : RegionInputs(step.region)) in = in || NeedsGrad(v);
    if (!out || !in) return Status::Ok();
    GradContext ctx(*this, kNoNode);
    return Prefixed("custom gradient '" + c.name + "': ", c.emit(ctx));
  }
  const Node& n = g_.node(step.node);
  const std::string where = "differentiating " + DescribeNode(n) + ": ";
  if (loss_[Index(n.id)]) {
    SIEVE_ENSURE(!HasGrad(n.outputs[0]), kUnimplemented,
                 where << "a gradient reaches its probabilities " << DescribeValue(g_.value(n.outputs[0]))
                       << "; only the loss itself is differentiated");
    if (!NeedsGrad(n.inputs[0])) return Status::Ok();
    GradContext ctx(*this, n.id);
    return Prefixed(where, grad::SoftmaxXentGrad(ctx));
  }
  const ValueId* with_grad = nullptr;
  for (const ValueId& v : n.outputs)
    if (with_grad == nullptr && HasGrad(v)) with_grad = &v;
  bool in = false;
  for (ValueId v : n.inputs) in = in || NeedsGrad(v);
  if (with_grad == nullptr || !in) return Status::Ok();
  const grad::Rule rule = grad::RuleFor(n.kind);
  SIEVE_ENSURE(rule != nullptr, kUnimplemented,
               where << "a gradient reaches its output " << DescribeValue(g_.value(*with_grad)) << ", but "
                     << OpKindName(n.kind) << " has no gradient rule"
                     << (n.kind == OpKind::kLstmGates ? " (an LSTM's backward is its lowering's CustomGradient)" : ""));
  GradContext ctx(*this, n.id);
  return Prefixed(where, rule(ctx));
}

StatusOr<Gradients> AutodiffState::Finish() {
  Gradients result;
  for (int i = 0; i < forward_values_; ++i) {
    const ValueId p{i};
    if (!IsRootParam(p)) continue;
    const std::optional<ValueId> grad = GradOf(p);
    SIEVE_RETURN_IF_ERROR(deferred_);
    const Value& param = g_.value(p);
    const std::string name = param.name + ".grad";
    if (grad && g_.value(*grad).name == name && g_.value(*grad).role == ValueRole::kParamGrad) {
      result.params.emplace_back(p, *grad);
      continue;
    }
    SIEVE_ENSURE(!ValueNameTaken(name), kInternal,
                 "the gradient of " << DescribeValue(param) << " should be named '" << name
                                    << "', but that name is taken by another value");
    const ValueId final_grad = LikeValue(p, name, ValueRole::kParamGrad);
    if (grad) {  // several contributions were summed into a partial: copy it out
      Emit(OpKind::kCopy, name, {*grad}, {final_grad}, {}, {});
    } else {  // the losses do not depend on it
      Emit(OpKind::kFill, name, {}, {final_grad}, FillAttr{0.0f}, {});
    }
    result.params.emplace_back(p, final_grad);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Gradients: reading, creating and summing them.

std::optional<ValueId> AutodiffState::GradOf(ValueId v) {
  if (!IsForward(v)) return std::nullopt;
  if (!complete_[Index(v)]) {
    if (Status st = Flush(v); !st.ok() && deferred_.ok()) deferred_ = st;
    complete_[Index(v)] = true;
  }
  return partial_[Index(v)];
}

// Adds the contributions that arrive through views: the gradient of each reading view of `v`,
// reshaped to v's shape, and, when `v` is a writing view, its place in the gradient of its base.
Status AutodiffState::Flush(ValueId v) {
  // Values are re-read after every step that may add values (references into the table move).
  for (ValueId u : reading_views_[Index(v)]) {
    const std::optional<ValueId> gu = GradOf(u);
    if (!gu) continue;
    const Value& value = g_.value(v);
    const Value& view = g_.value(u);
    const bool whole = view.view->offset == 0 && Dense(view) && Dense(value) && Dense(g_.value(*gu)) &&
                       ShapeNumel(view.planned) == ShapeNumel(value.planned);
    SIEVE_ENSURE(whole, kUnimplemented,
                 "a gradient reaches " << DescribeValue(view) << ", a view of " << DescribeValue(value) << " at offset "
                                       << view.view->offset
                                       << "; only views that reshape their whole base are differentiated (a "
                                          "CustomGradient must cover other views)");
    auto sites = [](const Value& x) {
      std::vector<int32_t> s;
      for (const PackedAxis& a : x.packed) s.push_back(Index(a.site));
      std::sort(s.begin(), s.end());
      return s;
    };
    SIEVE_ENSURE(sites(view) == sites(value), kUnimplemented,
                 "a gradient reaches " << DescribeValue(view) << ", a reshaping view of " << DescribeValue(value)
                                       << " that differs from it in the dropout sites that pack it");
    const Shape planned = value.planned, live = value.live;
    const std::vector<PackedAxis> packed = value.packed;
    const auto [name, role] = NextGradName(v);
    const ValueId reshaped = g_.AddView(name, role, planned, *gu);
    g_.mutable_value(reshaped).live = live;
    g_.mutable_value(reshaped).packed = packed;
    SIEVE_RETURN_IF_ERROR(Accumulate(v, reshaped));
  }
  if (!g_.value(v).view || g_.value(v).producer == kNoNode) return Status::Ok();
  const ValueId base = g_.value(v).view->base;
  const std::optional<ValueId> gb = GradOf(base);
  if (!gb) return Status::Ok();
  const Value& value = g_.value(v);
  const Value& b = g_.value(base);
  const Value& grad_b = g_.value(*gb);
  const bool same_layout = Dense(b) && Dense(grad_b) && b.packed.empty() && grad_b.packed.empty() &&
                           value.packed.empty() && grad_b.planned == b.planned;
  SIEVE_ENSURE(same_layout, kUnimplemented,
               "a gradient reaches " << DescribeValue(b) << ", which " << DescribeValue(value)
                                     << " writes into; only dense, unpacked assembled values are differentiated");
  const Shape planned = value.planned;
  const ValueView place = *value.view;
  const ValueId slice =
      g_.AddView(NextGradName(v).first, ValueRole::kActivationGrad, planned, *gb, place.offset, place.strides);
  return Accumulate(v, slice);
}

Status AutodiffState::AddGrad(ValueId v, ValueId contribution) {
  SIEVE_ENSURE(IsForward(v), kInternal,
               "AddGrad: %" << Index(v) << " is not a forward value (" << forward_values_ << " forward values)");
  SIEVE_ENSURE(g_.has_value(contribution), kInternal, "AddGrad: %" << Index(contribution) << " is not a value");
  SIEVE_ENSURE(!complete_[Index(v)], kInternal,
               "a contribution " << DescribeValue(g_.value(contribution)) << " to the gradient of "
                                 << DescribeValue(g_.value(v)) << " arrives after that gradient was read");
  return Accumulate(v, contribution);
}

Status AutodiffState::Accumulate(ValueId v, ValueId c) {
  const Value& value = g_.value(v);
  const Value& contribution = g_.value(c);
  SIEVE_ENSURE(contribution.dtype == value.dtype && contribution.planned == value.planned &&
                   Packing(contribution) == Packing(value),
               kInternal,
               "the gradient contribution " << DescribeValue(contribution) << " is not shaped and packed like "
                                            << DescribeValue(value));
  std::optional<ValueId>& partial = partial_[Index(v)];
  if (!partial) {
    partial = c;
    ++holders_[Index(c)];
    return Status::Ok();
  }
  const ValueId prev = *partial;
  SIEVE_ENSURE(g_.value(prev).role != ValueRole::kParamGrad, kInternal,
               DescribeValue(value) << " receives more gradient contributions than its readers predicted (another: "
                                    << DescribeValue(contribution)
                                    << "); a CustomGradient may add one contribution per read of a value");
  const Node* producer = contribution.producer == kNoNode ? nullptr : &g_.node(contribution.producer);
  const bool taken_over = producer != nullptr && producer->has_base() && producer->inputs.back() == prev;
  if (!taken_over) {
    if (CanRewrite(prev, c)) {
      Node& n = g_.mutable_node(contribution.producer);
      n.inputs.push_back(prev);
      std::visit(
          [](auto& a) {
            if constexpr (requires { a.beta; }) a.beta = 1.0f;
          },
          n.attr);
    } else {
      const std::string name = UniqueValueName(value.name + ".grad.sum");
      const ValueId sum = LikeValue(v, name, ValueRole::kActivationGrad);
      Emit(OpKind::kAdd, name, {prev, c}, {sum}, {}, {});
      --holders_[Index(prev)];
      partial = sum;
      ++holders_[Index(sum)];
      return Status::Ok();
    }
  }
  --holders_[Index(prev)];
  partial = c;
  ++holders_[Index(c)];
  return Status::Ok();
}

// A partial gradient a node may take over as its base (and overwrite): produced by a backward
// node, held as the gradient of exactly one forward value, not a view and not viewed.
bool AutodiffState::Ownable(ValueId grad) const {
  const Value& v = g_.value(grad);
  const auto held = holders_.find(Index(grad));
  return held != holders_.end() && held->second == 1 && !v.view && v.producer != kNoNode &&
         Index(v.producer) >= forward_nodes_ && v.role == ValueRole::kActivationGrad && !IsViewed(grad);
}

// Whether the node that produced `contribution` can accumulate into `prev` (beta = 1 with `prev`
// as its base): it is a backward node whose kind takes an optional base and has a beta, it has no
// base yet, nothing reads or holds its output, and `prev` is ownable and not read after it.
bool AutodiffState::CanRewrite(ValueId prev, ValueId contribution) const {
  const Value& c = g_.value(contribution);
  if (c.producer == kNoNode || Index(c.producer) < forward_nodes_ || c.view || IsViewed(contribution)) return false;
  if (holders_.count(Index(contribution)) && holders_.at(Index(contribution)) > 0) return false;
  const Node& n = g_.node(c.producer);
  if (GetOpInfo(n.kind).base != BaseInput::kOptional || !AttrBeta(n.attr) || n.has_base() || n.outputs.size() != 1)
    return false;
  if (!g_.Consumers(contribution).empty() || !Ownable(prev)) return false;
  if (Index(g_.value(prev).producer) >= Index(n.id)) return false;
  for (NodeId reader : g_.Consumers(prev))
    if (Index(reader) >= Index(n.id)) return false;
  return true;
}

bool AutodiffState::IsViewed(ValueId v) const {
  for (const Value& value : g_.values())
    if (value.view && value.view->base == v) return true;
  return false;
}

ValueId AutodiffState::AccumulationBase(ValueId v) {
  SIEVE_CHECK(IsForward(v), "AccumulationBase: %" << Index(v) << " is not a forward value");
  if (const std::optional<ValueId>& partial = partial_[Index(v)]; partial && Ownable(*partial)) return *partial;
  const std::string name = UniqueValueName(g_.value(v).name + ".grad.zero");
  const ValueId zero = LikeValue(v, name, ValueRole::kActivationGrad);
  Emit(OpKind::kFill, name, {}, {zero}, FillAttr{0.0f}, {});
  return zero;
}

ValueId AutodiffState::NewGrad(ValueId v) {
  SIEVE_CHECK(IsForward(v), "NewGrad: %" << Index(v) << " is not a forward value");
  const auto [name, role] = NextGradName(v);
  return LikeValue(v, name, role);
}

std::pair<std::string, ValueRole> AutodiffState::NextGradName(ValueId v) {
  const int k = ++made_[Index(v)];
  const std::string base = g_.value(v).name + ".grad";
  if (IsRootParam(v)) {
    // A parameter's single contribution is its final gradient; several are summed in partials
    // and copied to "<param>.grad" at the end, so that name stays free for it.
    if (expected_[Index(v)] == 1 && k == 1 && !ValueNameTaken(base)) return {base, ValueRole::kParamGrad};
    return {UniqueValueName(base + "." + std::to_string(k)), ValueRole::kActivationGrad};
  }
  return {UniqueValueName(k == 1 ? base : base + "." + std::to_string(k)), ValueRole::kActivationGrad};
}

// A new value shaped, typed and packed like `like` (planned and live shape).
ValueId AutodiffState::LikeValue(ValueId like, const std::string& name, ValueRole role) {
  const Value& v = g_.value(like);
  const Shape planned = v.planned, live = v.live;
  const std::vector<PackedAxis> packed = v.packed;
  const DType dtype = v.dtype;
  const ValueId id = g_.AddValue(name, role, planned, dtype);
  Value& out = g_.mutable_value(id);
  out.live = live;
  out.packed = packed;
  return id;
}

NodeId AutodiffState::Emit(OpKind kind, const std::string& name, std::vector<ValueId> inputs,
                           std::vector<ValueId> outputs, NodeAttr attr, std::vector<SiteUse> sites) {
  return g_.AddNode(kind, UniqueNodeName(name), std::move(inputs), std::move(outputs), std::move(attr),
                    Phase::kBackward, std::move(sites));
}

void AutodiffState::SyncNames() {
  for (; value_names_seen_ < g_.num_values(); ++value_names_seen_)
    value_names_.insert(g_.value(ValueId{value_names_seen_}).name);
  for (; node_names_seen_ < g_.num_nodes(); ++node_names_seen_)
    node_names_.insert(g_.node(NodeId{node_names_seen_}).name);
}

bool AutodiffState::ValueNameTaken(const std::string& name) {
  SyncNames();
  return value_names_.count(name) > 0;
}

std::string AutodiffState::UniqueValueName(const std::string& base) {
  SyncNames();
  std::string name = base;
  for (int k = 2; value_names_.count(name); ++k) name = base + "." + std::to_string(k);
  value_names_.insert(name);
  return name;
}

std::string AutodiffState::UniqueNodeName(const std::string& base) {
  SyncNames();
  std::string name = base;
  for (int k = 2; node_names_.count(name); ++k) name = base + "." + std::to_string(k);
  node_names_.insert(name);
  return name;
}

// ---------------------------------------------------------------------------------------------
// GradContext

Graph& GradContext::graph() { return state_.graph(); }

const Node& GradContext::forward() const {
  SIEVE_CHECK(forward_ != kNoNode, "GradContext::forward() called from a CustomGradient, which has no single node");
  return state_.graph().node(forward_);
}

std::optional<ValueId> GradContext::GradOf(ValueId forward_value) { return state_.GradOf(forward_value); }
bool GradContext::NeedsGrad(ValueId forward_value) const { return state_.NeedsGrad(forward_value); }
ValueId GradContext::NewGrad(ValueId forward_value) { return state_.NewGrad(forward_value); }
Status GradContext::AddGrad(ValueId forward_value, ValueId contribution) {
  return state_.AddGrad(forward_value, contribution);
}
ValueId GradContext::AccumulationBase(ValueId forward_value) { return state_.AccumulationBase(forward_value); }

NodeId GradContext::Emit(OpKind kind, std::string name, std::vector<ValueId> inputs, std::vector<ValueId> outputs,
                         NodeAttr attr, std::vector<SiteUse> sites) {
  return state_.Emit(kind, name, std::move(inputs), std::move(outputs), std::move(attr), std::move(sites));
}

// ---------------------------------------------------------------------------------------------

namespace grad {

Rule RuleFor(OpKind kind) {
  switch (kind) {
    case OpKind::kMatMul:
      return MatMulGrad;
    case OpKind::kBiasAdd:
      return BiasAddGrad;
    case OpKind::kChannelBiasAdd:
      return ChannelBiasAddGrad;
    case OpKind::kActivation:
      return ActivationGrad;
    case OpKind::kDropout:
      return DropoutGrad;
    case OpKind::kCopy:
      return CopyGrad;
    case OpKind::kAdd:
      return AddOpGrad;
    case OpKind::kMaxPool:
      return MaxPoolGrad;
    case OpKind::kAvgPool:
      return AvgPoolGrad;
    case OpKind::kIndexRows:
      return IndexRowsGrad;
    default:
      return nullptr;
  }
}

std::string BackwardName(const GradContext& ctx, const std::string& suffix) { return ctx.forward().name + suffix; }

}  // namespace grad

StatusOr<Gradients> AppendBackward(Graph& graph, const std::vector<NodeId>& loss_nodes,
                                   const std::vector<CustomGradient>& custom) {
  AutodiffState state(graph, custom);
  SIEVE_RETURN_IF_ERROR(state.Prepare(loss_nodes));
  SIEVE_RETURN_IF_ERROR(state.Walk());
  return state.Finish();
}

}  // namespace sieve::graph
