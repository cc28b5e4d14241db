// The memory planner: which buffer every value of a Graph lives in, where in it, and where each
// buffer sits in the one arena the executor allocates.
//
// Values that share storage form a storage class: a view shares its base's buffer (at the view's
// offset, with its strides), and the output of a node with a base input (op_kind.h, BaseInput)
// takes exactly the base's storage. Each class is one buffer, sized for the PLANNED (dense
// maximum) shapes of its members, so changing dropout patterns never re-plans memory.
//
// A class is external when a member comes from outside the graph (input, label, parameter,
// optimizer state) or is a parameter gradient: the executor binds those buffers to outside tensors
// (batch tensors, ParamArena views). Every other class lives in the arena, from the first node that
// touches it to the last; classes whose lifetimes do not overlap share bytes (greedy by size).
//
// This file does not allocate or bind anything (runtime/executor.h does) and does not verify the
// graph (verify.h); it reports what would make the plan wrong: a base read after the node that
// overwrites it in place, and members of one class with different dtypes or contradictory offsets
// or strides.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/device.h"
#include "framework/status.h"
#include "framework/tensor.h"
#include "graph/ir.h"

namespace sieve::graph {

/// One storage class: the buffer its members share.
struct PlannedBuffer {
  /// Bound by the executor to an outside tensor; not in the arena (offset_bytes is 0).
  bool external = false;
  /// The member the buffer is named after: a value that is not a view, at element 0.
  ValueId root{};
  std::string name;  ///< the root's name, for reports
  DType dtype = DType::kFloat32;
  /// The furthest element any member addresses at its planned shape, plus one.
  int64_t elements = 0;
  /// Arena buffers: the byte offset in the arena, a multiple of MemoryPlanOptions::alignment_bytes.
  int64_t offset_bytes = 0;
  /// The first and last node (indices in execution order) that read or write a member; a value in
  /// MemoryPlanOptions::keep_alive makes last_node the graph's last node. last_node < first_node
  /// when no node touches the buffer (it then overlaps nothing).
  int first_node = 0, last_node = 0;
  std::vector<ValueId> members;  ///< in id order

  int64_t bytes() const { return elements * static_cast<int64_t>(DTypeSize(dtype)); }
};

/// Where one value lives.
struct ValueStorage {
  int32_t buffer = -1;  ///< index into MemoryPlan::buffers
  int64_t offset = 0;   ///< in elements, from the buffer's first element
  /// Element strides per axis; empty: contiguous over the value's LIVE shape.
  Shape strides;
};

/// The buffers of a graph and the storage of each of its values (indexed by ValueId).
struct MemoryPlan {
  std::vector<PlannedBuffer> buffers;
  std::vector<ValueStorage> values;
  /// The arena's size: the furthest byte any arena buffer reaches.
  int64_t arena_bytes = 0;
  /// What the arena buffers would take without reuse: the sum of their sizes, each rounded up to
  /// the alignment.
  int64_t unshared_bytes = 0;

  /// A short table: totals, then one line per buffer (root name, dtype, elements, bytes, arena
  /// offset or "external", node range, member count).
  std::string Report() const;
};

struct MemoryPlanOptions {
  /// Values read after the graph has run (losses, outputs a caller fetches): their buffers stay
  /// live to the last node.
  std::vector<ValueId> keep_alive;
  /// Every arena buffer starts at a multiple of this (> 0).
  int64_t alignment_bytes = 256;
};

/// Plans the storage of every value of `graph` (see the top of this file). Fails with
/// kInvalidArgument, naming the values and nodes, when an operand or keep_alive id is not a value
/// of the graph; when a node reads a base (or a view of it) after the node that takes it
/// as its base, or a kept-alive value is such a base; when one class mixes dtypes; or when a value
/// would have to lie at two different places (a view that is also a base's output, away from the
/// base's offset or with other strides).
StatusOr<MemoryPlan> PlanMemory(const Graph& graph, const MemoryPlanOptions& options = {});

}  // namespace sieve::graph
