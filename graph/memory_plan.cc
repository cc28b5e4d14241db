// The memory planner (memory_plan.h): storage classes by a union-find that also tracks offsets,
// per-class extents and lifetimes, then greedy-by-size offsets in the arena.
#include "graph/memory_plan.h"

#include <algorithm>
#include <climits>
#include <iomanip>
#include <numeric>
#include <sstream>
#include <utility>

namespace sieve::graph {

namespace {

constexpr StatusCode kInvalid = StatusCode::kInvalidArgument;

// Union-find over values that also knows where each value lies relative to its class's
// representative: pos(v) = pos(parent(v)) + delta(v), in elements. Union by size keeps the trees
// shallow, so Find may recurse.
class StorageClasses {
 public:
  explicit StorageClasses(int values) : parent_(values), delta_(values, 0), size_(values, 1) {
    std::iota(parent_.begin(), parent_.end(), 0);
  }

  // The representative of v's class and v's position relative to it.
  std::pair<int32_t, int64_t> Find(int32_t v) {
    if (parent_[v] == v) return {v, 0};
    const auto [root, parent_pos] = Find(parent_[v]);
    parent_[v] = root;
    delta_[v] += parent_pos;
    return {root, delta_[v]};
  }

  // Records pos(a) = pos(b) + distance. Returns false, recording nothing, when a and b are already
  // in one class at another distance.
  bool Join(int32_t a, int32_t b, int64_t distance) {
    const auto [root_a, pos_a] = Find(a);
    const auto [root_b, pos_b] = Find(b);
    if (root_a == root_b) return pos_a == pos_b + distance;
    // pos(root_a) = pos(a) - pos_a = pos(b) + distance - pos_a = pos(root_b) + pos_b + distance - pos_a.
    const int64_t root_a_from_root_b = pos_b + distance - pos_a;
    if (size_[root_a] <= size_[root_b]) {
      parent_[root_a] = root_b;
      delta_[root_a] = root_a_from_root_b;
      size_[root_b] += size_[root_a];
    } else {
      parent_[root_b] = root_a;
      delta_[root_b] = -root_a_from_root_b;
      size_[root_a] += size_[root_b];
    }
    return true;
  }

  // pos(a) - pos(b), for a and b in one class.
  int64_t Distance(int32_t a, int32_t b) { return Find(a).second - Find(b).second; }

 private:
  std::vector<int32_t> parent_;
  std::vector<int64_t> delta_;
  std::vector<int32_t> size_;
};

std::string StridesToString(const Shape& strides) {
  return strides.empty() ? std::string("contiguous") : "strides " + ShapeToString(strides);
}

int64_t AlignUp(int64_t bytes, int64_t alignment) { return (bytes + alignment - 1) / alignment * alignment; }

Status CheckIds(const Graph& g, const MemoryPlanOptions& options) {
  SIEVE_ENSURE(options.alignment_bytes > 0, kInvalid,
               "memory plan alignment must be positive, got " << options.alignment_bytes << " bytes");
  for (const Node& n : g.nodes()) {
    for (const std::vector<ValueId>* operands : {&n.inputs, &n.outputs})
      for (ValueId id : *operands)
        SIEVE_ENSURE(g.has_value(id), kInvalid,
                     DescribeNode(n) << ": operand %" << Index(id) << " is not a value of the graph");
  }
  for (const Value& v : g.values())
    SIEVE_ENSURE(!v.view || (g.has_value(v.view->base) && Index(v.view->base) < Index(v.id)), kInvalid,
                 DescribeValue(v) << ": views %" << Index(v.view->base) << ", which is not an earlier value");
  for (ValueId id : options.keep_alive)
    SIEVE_ENSURE(g.has_value(id), kInvalid, "keep_alive names %" << Index(id) << ", which is not a value of the graph");
  return Status::Ok();
}

// Per value: the node that writes it over a base input (op_kind.h, BaseInput), or kNoNode.
std::vector<NodeId> BaseWriters(const Graph& g) {
  std::vector<NodeId> writer(g.num_values(), kNoNode);
  for (const Node& n : g.nodes())
    if (n.has_base() && !n.outputs.empty() && writer[Index(n.outputs[0])] == kNoNode)
      writer[Index(n.outputs[0])] = n.id;
  return writer;
}

// "node 'acc' (#4 MatMul) overwrote it in place: it takes value 'g0' (...) as its base and writes
// value 'g1' (...) into the same storage".
std::string Overwrite(const Graph& g, const Node& writer) {
  return DescribeNode(writer) + " overwrote it in place: it takes " + DescribeValue(g.value(writer.inputs.back())) +
         " as its base and writes " + DescribeValue(g.value(writer.outputs[0])) + " into the same storage";
}

// The base rule: a node that takes a base overwrites it in place, so no later node may read the
// base or a view of it (a part of the same storage), and no kept-alive value may be one.
Status CheckOverwrittenBases(const Graph& g, const std::vector<ValueId>& keep_alive) {
  std::vector<std::vector<ValueId>> views(g.num_values());
  for (const Value& v : g.values())
    if (v.view) views[Index(v.view->base)].push_back(v.id);

  // Per value: the first node that overwrites it (as its base, or as a view of the base).
  std::vector<NodeId> overwritten_by(g.num_values(), kNoNode);
  std::vector<ValueId> base_of(g.num_values());
  for (const Node& writer : g.nodes()) {
    if (!writer.has_base() || writer.outputs.empty()) continue;
    const ValueId base = writer.inputs.back();
    std::vector<ValueId> pending{base};
    while (!pending.empty()) {
      const ValueId v = pending.back();
      pending.pop_back();
      if (overwritten_by[Index(v)] != kNoNode) continue;
      overwritten_by[Index(v)] = writer.id;
      base_of[Index(v)] = base;
      for (ValueId view : views[Index(v)]) pending.push_back(view);
    }
  }

  auto what = [&](ValueId v) {
    std::string s = DescribeValue(g.value(v));
    if (base_of[Index(v)] != v) s += ", a view of the base " + DescribeValue(g.value(base_of[Index(v)])) + ",";
    return s;
  };
  for (const Node& n : g.nodes()) {
    for (ValueId in : n.inputs) {
      const NodeId writer = overwritten_by[Index(in)];
      SIEVE_ENSURE(writer == kNoNode || Index(n.id) <= Index(writer), kInvalid,
                   DescribeNode(n) << " reads " << what(in) << " after " << Overwrite(g, g.node(writer)));
    }
  }
  for (ValueId kept : keep_alive) {
    const NodeId writer = overwritten_by[Index(kept)];
    SIEVE_ENSURE(
        writer == kNoNode, kInvalid,
        "keep_alive asks for " << what(kept) << " after the graph has run, but " << Overwrite(g, g.node(writer)));
  }
  return Status::Ok();
}

// The strides of every value: a view's own; the output of a node with a base, its base's (down the
// chain of bases to a view or a value without one); otherwise none (contiguous).
StatusOr<std::vector<Shape>> ResolveStrides(const Graph& g) {
  const std::vector<NodeId> base_writer = BaseWriters(g);
  std::vector<Shape> strides(g.num_values());
  for (const Value& v : g.values()) {
    ValueId at = v.id;
    for (int steps = 0; !g.value(at).view && base_writer[Index(at)] != kNoNode; ++steps) {
      SIEVE_ENSURE(steps < g.num_values(), kInvalid, DescribeValue(v) << ": its chain of bases is a cycle");
      at = g.node(base_writer[Index(at)]).inputs.back();
    }
    if (g.value(at).view) strides[Index(v.id)] = g.value(at).view->strides;
    const Shape& s = strides[Index(v.id)];
    SIEVE_ENSURE(s.empty() || s.size() == v.planned.size(), kInvalid,
                 DescribeValue(v) << " has " << StridesToString(s) << " (from " << DescribeValue(g.value(at))
                                  << ") for rank " << v.planned.size());
  }
  for (const Node& n : g.nodes()) {
    if (!n.has_base() || n.outputs.empty()) continue;
    const Value& out = g.value(n.outputs[0]);
    const ValueId base = n.inputs.back();
    SIEVE_ENSURE(!out.view || out.view->strides == strides[Index(base)], kInvalid,
                 DescribeNode(n) << " writes " << DescribeValue(out) << " over its base "
                                 << DescribeValue(g.value(base)) << ", but the output is a view with "
                                 << StridesToString(out.view->strides) << " and the base has "
                                 << StridesToString(strides[Index(base)]));
  }
  return strides;
}

// One past the furthest element a value addresses at its planned shape, from its buffer's start.
int64_t Extent(const Value& v, const ValueStorage& storage) {
  if (ShapeNumel(v.planned) == 0) return 0;
  if (storage.strides.empty()) return storage.offset + ShapeNumel(v.planned);
  int64_t last = storage.offset;
  for (size_t axis = 0; axis < v.planned.size(); ++axis) last += (v.planned[axis] - 1) * storage.strides[axis];
  return last + 1;
}

bool IsExternalRole(ValueRole role) { return IsLeafRole(role) || role == ValueRole::kParamGrad; }

// Groups values into buffers (in order of their first member), fills each value's storage and
// each buffer's root, dtype, extent and externality.
Status BuildBuffers(const Graph& g, const std::vector<Shape>& strides, MemoryPlan& plan) {
  StorageClasses classes(g.num_values());
  for (const Value& v : g.values())
    if (v.view) SIEVE_CHECK(classes.Join(Index(v.id), Index(v.view->base), v.view->offset), "views form a forest");
  for (const Node& n : g.nodes()) {
    if (!n.has_base() || n.outputs.empty()) continue;
    const ValueId out = n.outputs[0], base = n.inputs.back();
    SIEVE_ENSURE(classes.Join(Index(out), Index(base), 0), kInvalid,
                 DescribeNode(n) << " writes " << DescribeValue(g.value(out)) << " over its base "
                                 << DescribeValue(g.value(base)) << ", so both must start at the same element, but "
                                 << "their views place the output " << classes.Distance(Index(out), Index(base))
                                 << " elements after the base");
  }

  plan.values.assign(g.num_values(), ValueStorage{});
  std::vector<int32_t> buffer_of_class(g.num_values(), -1);
  std::vector<int64_t> position(g.num_values());
  for (const Value& v : g.values()) {
    const auto [rep, pos] = classes.Find(Index(v.id));
    position[Index(v.id)] = pos;
    if (buffer_of_class[rep] < 0) {
      buffer_of_class[rep] = static_cast<int32_t>(plan.buffers.size());
      plan.buffers.emplace_back();
    }
    plan.values[Index(v.id)].buffer = buffer_of_class[rep];
    plan.values[Index(v.id)].strides = strides[Index(v.id)];
    plan.buffers[buffer_of_class[rep]].members.push_back(v.id);
  }

  for (PlannedBuffer& buffer : plan.buffers) {
    int64_t start = position[Index(buffer.members[0])];
    for (ValueId m : buffer.members) start = std::min(start, position[Index(m)]);
    bool rooted = false;
    for (ValueId m : buffer.members) {
      ValueStorage& storage = plan.values[Index(m)];
      storage.offset = position[Index(m)] - start;
      const Value& v = g.value(m);
      // The first element belongs to a value that is not a view: a view lies at or after its base.
      if (!rooted && !v.view && storage.offset == 0) {
        rooted = true;
        buffer.root = m;
      }
      buffer.external = buffer.external || IsExternalRole(v.role);
      buffer.elements = std::max(buffer.elements, Extent(v, storage));
    }
    SIEVE_CHECK(rooted, "a buffer's first element belongs to a value that is not a view");
    const Value& root = g.value(buffer.root);
    buffer.name = root.name;
    buffer.dtype = root.dtype;
    for (ValueId m : buffer.members) {
      const Value& v = g.value(m);
      SIEVE_ENSURE(v.dtype == root.dtype, kInvalid,
                   DescribeValue(v) << " and " << DescribeValue(root)
                                    << " share one buffer (through views and bases) but differ in dtype");
    }
  }
  return Status::Ok();
}

// Each buffer's first and last touching node; kept-alive values extend to the last node.
void SetLifetimes(const Graph& g, const std::vector<ValueId>& keep_alive, MemoryPlan& plan) {
  for (PlannedBuffer& buffer : plan.buffers) {
    buffer.first_node = INT_MAX;
    buffer.last_node = -1;
  }
  auto touch = [&](ValueId v, int node) {
    PlannedBuffer& buffer = plan.buffers[plan.values[Index(v)].buffer];
    buffer.first_node = std::min(buffer.first_node, node);
    buffer.last_node = std::max(buffer.last_node, node);
  };
  for (const Node& n : g.nodes()) {
    for (ValueId in : n.inputs) touch(in, Index(n.id));
    for (ValueId out : n.outputs) touch(out, Index(n.id));
  }
  if (g.num_nodes() > 0)
    for (ValueId kept : keep_alive) touch(kept, g.num_nodes() - 1);
  for (PlannedBuffer& buffer : plan.buffers) {
    if (buffer.last_node >= 0) continue;
    buffer.first_node = 0;
    buffer.last_node = -1;
  }
}

// Places the arena buffers, largest first, each at the lowest aligned offset where it overlaps no
// placed buffer whose lifetime overlaps its own.
void PlaceArenaBuffers(int64_t alignment, MemoryPlan& plan) {
  std::vector<int32_t> order;
  for (int32_t b = 0; b < static_cast<int32_t>(plan.buffers.size()); ++b)
    if (!plan.buffers[b].external) order.push_back(b);
  std::stable_sort(order.begin(), order.end(), [&](int32_t x, int32_t y) {
    const PlannedBuffer& bx = plan.buffers[x];
    const PlannedBuffer& by = plan.buffers[y];
    if (bx.bytes() != by.bytes()) return bx.bytes() > by.bytes();
    return bx.first_node < by.first_node;
  });

  std::vector<int32_t> placed;
  std::vector<std::pair<int64_t, int64_t>> taken;  // [begin, end) byte ranges of conflicting buffers
  for (int32_t b : order) {
    PlannedBuffer& buffer = plan.buffers[b];
    taken.clear();
    for (int32_t p : placed) {
      const PlannedBuffer& other = plan.buffers[p];
      if (other.first_node <= buffer.last_node && buffer.first_node <= other.last_node)
        taken.emplace_back(other.offset_bytes, other.offset_bytes + other.bytes());
    }
    std::sort(taken.begin(), taken.end());
    int64_t offset = 0;
    for (const auto& [begin, end] : taken) {
      if (offset + buffer.bytes() <= begin) break;
      offset = std::max(offset, AlignUp(end, alignment));
    }
    buffer.offset_bytes = offset;
    placed.push_back(b);
    plan.arena_bytes = std::max(plan.arena_bytes, offset + buffer.bytes());
    plan.unshared_bytes += AlignUp(buffer.bytes(), alignment);
  }
}

}  // namespace

StatusOr<MemoryPlan> PlanMemory(const Graph& graph, const MemoryPlanOptions& options) {
  SIEVE_RETURN_IF_ERROR(CheckIds(graph, options));
  SIEVE_RETURN_IF_ERROR(CheckOverwrittenBases(graph, options.keep_alive));
  SIEVE_ASSIGN_OR_RETURN(const std::vector<Shape> strides, ResolveStrides(graph));
  MemoryPlan plan;
  SIEVE_RETURN_IF_ERROR(BuildBuffers(graph, strides, plan));
  SetLifetimes(graph, options.keep_alive, plan);
  PlaceArenaBuffers(options.alignment_bytes, plan);
  return plan;
}

std::string MemoryPlan::Report() const {
  int external = 0;
  size_t name_width = 4;
  for (const PlannedBuffer& b : buffers) {
    external += b.external ? 1 : 0;
    name_width = std::max(name_width, b.name.size());
  }
  std::ostringstream os;
  os << "memory plan: " << buffers.size() << " buffers (" << external << " external), arena " << arena_bytes
     << " bytes, " << unshared_bytes << " without reuse";
  if (unshared_bytes > 0)
    os << " (" << std::fixed << std::setprecision(1)
       << 100.0 * (1.0 - static_cast<double>(arena_bytes) / static_cast<double>(unshared_bytes)) << "% saved)";
  os << "\n";
  os << std::left << "  " << std::setw(5) << "buf" << std::setw(static_cast<int>(name_width) + 2) << "root"
     << std::setw(10) << "dtype" << std::right << std::setw(12) << "elements" << std::setw(14) << "bytes"
     << std::setw(14) << "offset"
     << "  " << std::left << std::setw(12) << "nodes"
     << "members\n";
  for (size_t i = 0; i < buffers.size(); ++i) {
    const PlannedBuffer& b = buffers[i];
    const std::string nodes =
        b.last_node < b.first_node ? "-" : std::to_string(b.first_node) + ".." + std::to_string(b.last_node);
    os << std::left << "  " << std::setw(5) << ("#" + std::to_string(i)) << std::setw(static_cast<int>(name_width) + 2)
       << b.name << std::setw(10) << DTypeName(b.dtype) << std::right << std::setw(12) << b.elements << std::setw(14)
       << b.bytes() << std::setw(14) << (b.external ? std::string("external") : std::to_string(b.offset_bytes)) << "  "
       << std::left << std::setw(12) << nodes << b.members.size() << "\n";
  }
  return os.str();
}

}  // namespace sieve::graph
