// Tests of the memory planner: reuse along a chain, views at their base's offset, base chains in
// one buffer, keep_alive, external buffers, the errors it reports, and, on random graphs, that no
// two values live at the same time share a byte (every pair, plus a simulation of the arena).
#include "graph/memory_plan.h"

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "graph/verify.h"
#include "tests/graph/test_graphs.h"

namespace sieve::graph {
namespace {

using testing::MakeMlp;
using testing::Val;

constexpr ValueRole kAct = ValueRole::kActivation;

ops::MatMulAttr Accumulate() {
  ops::MatMulAttr attr;
  attr.beta = 1.0f;
  return attr;
}

MemoryPlan Plan(const Graph& g, const MemoryPlanOptions& options = {}) {
  auto plan = PlanMemory(g, options);
  INFO(plan.status().ToString());
  REQUIRE(plan.ok());
  return *std::move(plan);
}

void ExpectValid(const Graph& g) {
  const Status st = Verify(g);
  INFO(st.ToString());
  REQUIRE(st.ok());
}

void ExpectPlanError(const Graph& g, const MemoryPlanOptions& options, std::initializer_list<const char*> fragments) {
  auto plan = PlanMemory(g, options);
  REQUIRE_FALSE(plan.ok());
  INFO(plan.status().ToString());
  CHECK(plan.status().code() == StatusCode::kInvalidArgument);
  for (const char* fragment : fragments) CHECK_THAT(plan.status().message(), Catch::Contains(fragment));
}

const PlannedBuffer& BufferOf(const MemoryPlan& plan, ValueId v) { return plan.buffers[plan.values[Index(v)].buffer]; }

Shape ContiguousStrides(const Shape& shape) {
  Shape strides(shape.size(), 1);
  for (int axis = static_cast<int>(shape.size()) - 2; axis >= 0; --axis)
    strides[axis] = strides[axis + 1] * shape[axis + 1];
  return strides;
}

// The arena element (float32) of every element of `v` at its planned shape.
std::vector<int64_t> ArenaElements(const Graph& g, const MemoryPlan& plan, ValueId v) {
  const Value& value = g.value(v);
  const ValueStorage& storage = plan.values[Index(v)];
  const Shape strides = storage.strides.empty() ? ContiguousStrides(value.planned) : storage.strides;
  REQUIRE(BufferOf(plan, v).offset_bytes % 4 == 0);
  const int64_t start = BufferOf(plan, v).offset_bytes / 4 + storage.offset;
  std::vector<int64_t> out;
  if (ShapeNumel(value.planned) == 0) return out;
  Shape index(value.planned.size(), 0);
  for (;;) {
    int64_t at = start;
    for (size_t axis = 0; axis < index.size(); ++axis) at += index[axis] * strides[axis];
    out.push_back(at);
    int axis = static_cast<int>(index.size()) - 1;
    while (axis >= 0 && ++index[axis] == value.planned[axis]) index[axis--] = 0;
    if (axis < 0) return out;
  }
}

// x -> fc1 -> relu1 -> fc2 -> relu2 -> fc3: five [width, width] activations, each read only by the
// next node.
Graph MakeChain(int64_t width = 64) {
  Graph g;
  const ValueId x = g.AddValue("x", ValueRole::kInput, {width, width});
  const ValueId w1 = g.AddParam("fc1.w", {width, width});
  const ValueId w2 = g.AddParam("fc2.w", {width, width});
  const ValueId w3 = g.AddParam("fc3.w", {width, width});
  const ValueId a1 = g.AddValue("fc1.out", kAct, {width, width});
  const ValueId h1 = g.AddValue("relu1.out", kAct, {width, width});
  const ValueId a2 = g.AddValue("fc2.out", kAct, {width, width});
  const ValueId h2 = g.AddValue("relu2.out", kAct, {width, width});
  const ValueId a3 = g.AddValue("fc3.out", kAct, {width, width});
  g.AddNode(OpKind::kMatMul, "fc1", {x, w1}, {a1}, ops::MatMulAttr{});
  g.AddNode(OpKind::kActivation, "relu1", {a1}, {h1}, ActivationAttr{});
  g.AddNode(OpKind::kMatMul, "fc2", {h1, w2}, {a2}, ops::MatMulAttr{});
  g.AddNode(OpKind::kActivation, "relu2", {a2}, {h2}, ActivationAttr{});
  g.AddNode(OpKind::kMatMul, "fc3", {h2, w3}, {a3}, ops::MatMulAttr{});
  return g;
}

TEST_CASE("PlanMemory reuses arena bytes along a chain", "[memory_plan]") {
  const Graph g = MakeChain();
  ExpectValid(g);
  const MemoryPlan plan = Plan(g);
  const int64_t bytes = 64 * 64 * 4;
  CHECK(plan.buffers.size() == 9);
  CHECK(plan.unshared_bytes == 5 * bytes);
  // Each activation dies at the node after its producer, so two buffers take turns.
  CHECK(plan.arena_bytes == 2 * bytes);
  const char* chain[] = {"fc1.out", "relu1.out", "fc2.out", "relu2.out", "fc3.out"};
  for (int i = 0; i < 5; ++i) {
    const PlannedBuffer& b = BufferOf(plan, Val(g, chain[i]));
    INFO(chain[i]);
    CHECK_FALSE(b.external);
    CHECK(b.first_node == i);
    CHECK(b.last_node == std::min(i + 1, 4));
    CHECK(b.bytes() == bytes);
    if (i > 0) CHECK(b.offset_bytes != BufferOf(plan, Val(g, chain[i - 1])).offset_bytes);
  }
}

TEST_CASE("PlanMemory places arena buffers at aligned offsets within the arena", "[memory_plan]") {
  const Graph g = MakeChain(3);  // 36-byte buffers
  for (int64_t alignment : {4, 64, 256}) {
    INFO("alignment " << alignment);
    const MemoryPlan plan = Plan(g, {.alignment_bytes = alignment});
    for (const PlannedBuffer& b : plan.buffers) {
      if (b.external) continue;
      CHECK(b.offset_bytes % alignment == 0);
      CHECK(b.offset_bytes + b.bytes() <= plan.arena_bytes);
    }
    CHECK(plan.unshared_bytes == 5 * ((36 + alignment - 1) / alignment * alignment));
    CHECK(plan.arena_bytes == ((36 + alignment - 1) / alignment * alignment) + 36);
  }
  ExpectPlanError(g, {.alignment_bytes = 0}, {"alignment must be positive"});
}

TEST_CASE("PlanMemory puts views at their base's offset with their strides", "[memory_plan]") {
  Graph g;
  const ValueId x = g.AddValue("x", ValueRole::kInput, {4, 6});
  const ValueId a = g.AddValue("a", kAct, {4, 6});
  const ValueId row = g.AddView("a.row2", kAct, {6}, a, 12);
  const ValueId tail = g.AddView("a.row2.tail", kAct, {3}, row, 3);  // a view of a view: element 15 of a
  const ValueId col = g.AddView("a.col1", kAct, {4, 1}, a, 1, {6, 1});
  const ValueId flat = g.AddView("a.flat", kAct, {24}, a);
  g.AddNode(OpKind::kCopy, "copy.a", {x}, {a});
  int i = 0;
  for (ValueId view : {row, tail, col, flat}) {
    const Value& v = g.value(view);
    const ValueId out = g.AddValue(v.name + ".copy", kAct, v.planned);
    g.AddNode(OpKind::kCopy, "copy." + std::to_string(i++), {view}, {out});
  }
  ExpectValid(g);
  const MemoryPlan plan = Plan(g);
  const ValueStorage& base = plan.values[Index(a)];
  CHECK(base.offset == 0);
  CHECK(base.strides.empty());
  for (ValueId view : {row, tail, col, flat}) CHECK(plan.values[Index(view)].buffer == base.buffer);
  CHECK(plan.values[Index(row)].offset == 12);
  CHECK(plan.values[Index(tail)].offset == 15);
  CHECK(plan.values[Index(col)].offset == 1);
  CHECK(plan.values[Index(col)].strides == Shape{6, 1});
  CHECK(plan.values[Index(flat)].offset == 0);
  CHECK(plan.values[Index(flat)].strides.empty());
  const PlannedBuffer& buffer = BufferOf(plan, a);
  CHECK(buffer.root == a);
  CHECK(buffer.name == "a");
  CHECK(buffer.elements == 24);
  CHECK(buffer.members == std::vector<ValueId>{a, row, tail, col, flat});
  CHECK(buffer.first_node == 0);
  CHECK(buffer.last_node == 4);  // the last read goes through a view
}

TEST_CASE("PlanMemory gives an assembled value and the views that write it one buffer", "[memory_plan]") {
  // A [B=2, T=3, X=4] sequence written one time step at a time, as an LSTM's outputs are.
  Graph g;
  const ValueId seq = g.AddValue("seq", kAct, {2, 3, 4});
  std::vector<ValueId> steps;
  for (int t = 0; t < 3; ++t) {
    steps.push_back(g.AddView("seq.t" + std::to_string(t), kAct, {2, 4}, seq, 4 * t, {12, 1}));
    g.AddNode(OpKind::kFill, "fill.t" + std::to_string(t), {}, {steps.back()}, FillAttr{1.0f});
  }
  const ValueId out = g.AddValue("out", kAct, {2, 3, 4});
  g.AddNode(OpKind::kCopy, "copy", {seq}, {out});
  ExpectValid(g);
  REQUIRE(g.IsAssembled(seq));
  const MemoryPlan plan = Plan(g);
  const PlannedBuffer& buffer = BufferOf(plan, seq);
  CHECK(buffer.root == seq);
  CHECK(buffer.elements == 24);
  CHECK(buffer.first_node == 0);  // from the first write through a view, not the first read
  CHECK(buffer.last_node == 3);
  for (int t = 0; t < 3; ++t) {
    CHECK(plan.values[Index(steps[t])].buffer == plan.values[Index(seq)].buffer);
    CHECK(plan.values[Index(steps[t])].offset == 4 * t);
    CHECK(plan.values[Index(steps[t])].strides == Shape{12, 1});
  }
  // The copy reads the sequence while writing `out`: they cannot share bytes.
  CHECK(BufferOf(plan, out).offset_bytes != buffer.offset_bytes);
}

TEST_CASE("PlanMemory gives a chain of bases one storage", "[memory_plan]") {
  Graph g;
  const ValueId x = g.AddValue("x", ValueRole::kInput, {2, 4});
  const ValueId w = g.AddParam("w", {4, 5});
  const ValueId acc0 = g.AddValue("acc0", kAct, {2, 5});
  const ValueId acc1 = g.AddValue("acc1", kAct, {2, 5});
  const ValueId acc2 = g.AddValue("acc2", kAct, {2, 5});
  const ValueId out = g.AddValue("out", kAct, {2, 5});
  g.AddNode(OpKind::kFill, "acc.zero", {}, {acc0}, FillAttr{});
  g.AddNode(OpKind::kMatMul, "acc.1", {x, w, acc0}, {acc1}, Accumulate());
  g.AddNode(OpKind::kMatMul, "acc.2", {x, w, acc1}, {acc2}, Accumulate());
  g.AddNode(OpKind::kCopy, "copy", {acc2}, {out});

  // The same accumulation into time step 1 of a [2, 3, 5] sequence: the output, a plain value,
  // inherits the step's place and strides. (It is added first, so the buffer's lowest id is not at
  // its first element.)
  const ValueId step_acc = g.AddValue("seq.t1.acc", kAct, {2, 5});
  const ValueId seq = g.AddValue("seq", kAct, {2, 3, 5});
  const ValueId step = g.AddView("seq.t1", kAct, {2, 5}, seq, 5, {15, 1});
  const ValueId step_out = g.AddValue("seq.t1.out", kAct, {2, 5});
  g.AddNode(OpKind::kFill, "seq.t1.zero", {}, {step}, FillAttr{});
  g.AddNode(OpKind::kMatMul, "seq.t1.add", {x, w, step}, {step_acc}, Accumulate());
  g.AddNode(OpKind::kCopy, "seq.t1.copy", {step_acc}, {step_out});
  ExpectValid(g);

  const MemoryPlan plan = Plan(g);
  for (ValueId v : {acc1, acc2}) {
    CHECK(plan.values[Index(v)].buffer == plan.values[Index(acc0)].buffer);
    CHECK(plan.values[Index(v)].offset == 0);
    CHECK(plan.values[Index(v)].strides.empty());
  }
  const PlannedBuffer& acc = BufferOf(plan, acc0);
  CHECK(acc.root == acc0);
  CHECK(acc.elements == 10);
  CHECK(acc.first_node == 0);
  CHECK(acc.last_node == 3);

  CHECK(plan.values[Index(step_acc)].buffer == plan.values[Index(seq)].buffer);
  CHECK(plan.values[Index(step_acc)].offset == 5);
  CHECK(plan.values[Index(step_acc)].strides == Shape{15, 1});
  CHECK(plan.values[Index(seq)].offset == 0);
  CHECK(plan.values[Index(step)].offset == 5);
  CHECK(BufferOf(plan, seq).root == seq);
  CHECK(BufferOf(plan, seq).elements == 30);
}

TEST_CASE("PlanMemory places the largest buffers first", "[memory_plan]") {
  // a (256 bytes, nodes 0..1), b and c (1 KiB, nodes 1..2 and 2..3), e (512 bytes, node 3). In node
  // order a would take [0, 256), push b to 256 and c past b's end (2304 bytes in all); largest
  // first, b and c take [0, 1024) and [1024, 2048), e fits under c's start and a above b's end.
  Graph g;
  const ValueId w = g.AddParam("w", {8, 32});
  const ValueId w2 = g.AddParam("w2", {4, 8});
  const ValueId a = g.AddValue("a", kAct, {8, 8});
  const ValueId b = g.AddValue("b", kAct, {8, 32});
  const ValueId c = g.AddValue("c", kAct, {8, 32});
  const ValueId e = g.AddValue("e", kAct, {4, 32});
  g.AddNode(OpKind::kFill, "fill.a", {}, {a}, FillAttr{});
  g.AddNode(OpKind::kMatMul, "mm.b", {a, w}, {b}, ops::MatMulAttr{});
  g.AddNode(OpKind::kCopy, "copy.c", {b}, {c});
  g.AddNode(OpKind::kMatMul, "mm.e", {w2, c}, {e}, ops::MatMulAttr{});
  ExpectValid(g);
  const MemoryPlan plan = Plan(g);
  CHECK(BufferOf(plan, b).offset_bytes == 0);
  CHECK(BufferOf(plan, c).offset_bytes == 1024);
  CHECK(BufferOf(plan, e).offset_bytes == 0);
  CHECK(BufferOf(plan, a).offset_bytes == 1024);
  CHECK(plan.arena_bytes == 2048);
  CHECK(plan.unshared_bytes == 1024 + 1024 + 512 + 256);
}

TEST_CASE("PlanMemory keeps keep_alive values to the end of the graph", "[memory_plan]") {
  const Graph g = MakeChain();
  const ValueId first = Val(g, "fc1.out");
  const MemoryPlan plan = Plan(g, {.keep_alive = {first}});
  const PlannedBuffer& kept = BufferOf(plan, first);
  CHECK(kept.first_node == 0);
  CHECK(kept.last_node == 4);
  // It overlaps every other activation in time, so nothing shares its bytes; the rest alternate.
  for (const PlannedBuffer& b : plan.buffers) {
    if (b.external || b.root == first) continue;
    CHECK((b.offset_bytes >= kept.offset_bytes + kept.bytes() || b.offset_bytes + b.bytes() <= kept.offset_bytes));
  }
  CHECK(plan.arena_bytes == 3 * 64 * 64 * 4);
  ExpectPlanError(g, {.keep_alive = {ValueId{99}}}, {"keep_alive names %99"});
}

TEST_CASE("PlanMemory binds leaves and parameter gradients outside the arena", "[memory_plan]") {
  const Graph g = MakeMlp(4, 6, 8, 3);
  ExpectValid(g);
  const MemoryPlan plan = Plan(g);
  REQUIRE(plan.values.size() == static_cast<size_t>(g.num_values()));
  int external = 0;
  for (const PlannedBuffer& b : plan.buffers) {
    bool outside = false;
    for (ValueId m : b.members)
      outside = outside || IsLeafRole(g.value(m).role) || g.value(m).role == ValueRole::kParamGrad;
    INFO(b.name);
    CHECK(b.external == outside);
    if (b.external) CHECK(b.offset_bytes == 0);
    external += b.external ? 1 : 0;
  }
  // x, labels, 4 parameters, 4 parameter gradients (fc2.w.grad shares its zero-filled base's).
  CHECK(external == 10);
  CHECK(plan.buffers.size() == 19);
  CHECK(plan.values[Index(Val(g, "fc2.w.grad"))].buffer == plan.values[Index(Val(g, "fc2.w.grad.init"))].buffer);
  CHECK(BufferOf(plan, Val(g, "fc2.w.grad")).root == Val(g, "fc2.w.grad.init"));
  // Nine activations and activation gradients, each at most 4 x 8 floats: one 256-byte slot each.
  CHECK(plan.unshared_bytes == 9 * 256);
  CHECK(plan.arena_bytes < plan.unshared_bytes);
  CHECK(BufferOf(plan, Val(g, "labels")).dtype == DType::kInt32);

  const std::string report = plan.Report();
  CHECK_THAT(report, Catch::Contains("19 buffers (10 external)") &&
                         Catch::Contains("arena " + std::to_string(plan.arena_bytes) + " bytes") &&
                         Catch::Contains("2304 without reuse") && Catch::Contains("fc2.w.grad.init") &&
                         Catch::Contains("external") && Catch::Contains("int32"));
}

TEST_CASE("PlanMemory rejects reading a base after the node that overwrites it", "[memory_plan]") {
  Graph g;
  const ValueId x = g.AddValue("x", ValueRole::kInput, {2, 2});
  const ValueId w = g.AddParam("w", {2, 2});
  const ValueId acc0 = g.AddValue("acc0", kAct, {2, 2});
  const ValueId acc1 = g.AddValue("acc1", kAct, {2, 2});
  const ValueId row = g.AddView("acc0.row1", kAct, {2}, acc0, 2);
  g.AddNode(OpKind::kCopy, "acc.init", {x}, {acc0});
  g.AddNode(OpKind::kMatMul, "acc.add", {x, w, acc0}, {acc1}, Accumulate());
  CHECK(PlanMemory(g).ok());

  SECTION("the base itself") {
    const ValueId late = g.AddValue("late", kAct, {2, 2});
    g.AddNode(OpKind::kCopy, "late.read", {acc0}, {late});
    ExpectPlanError(
        g, {},
        {"node 'late.read'", "reads value 'acc0'", "after node 'acc.add'", "as its base", "writes value 'acc1'"});
  }
  SECTION("a view of the base") {
    const ValueId late = g.AddValue("late", kAct, {2});
    g.AddNode(OpKind::kCopy, "late.read", {row}, {late});
    ExpectPlanError(
        g, {},
        {"node 'late.read'", "reads value 'acc0.row1'", "a view of the base value 'acc0'", "after node 'acc.add'"});
  }
  SECTION("a second accumulation into the same base") {
    const ValueId again = g.AddValue("acc1b", kAct, {2, 2});
    g.AddNode(OpKind::kMatMul, "acc.again", {x, w, acc0}, {again}, Accumulate());
    ExpectPlanError(g, {}, {"node 'acc.again'", "reads value 'acc0'", "after node 'acc.add'"});
  }
  SECTION("a kept-alive base") {
    ExpectPlanError(g, {.keep_alive = {acc0}}, {"keep_alive asks for value 'acc0'", "node 'acc.add'"});
  }
}

TEST_CASE("PlanMemory rejects a storage class with two dtypes or two places for a value", "[memory_plan]") {
  Graph g;
  const ValueId x = g.AddValue("x", ValueRole::kInput, {2, 4});
  const ValueId w = g.AddParam("w", {4, 4});
  const ValueId seq = g.AddValue("seq", kAct, {2, 4});
  const ValueId row0 = g.AddView("seq.row0", kAct, {1, 4}, seq, 0);
  const ValueId row1 = g.AddView("seq.row1", kAct, {1, 4}, seq, 4);
  g.AddNode(OpKind::kFill, "fill.row0", {}, {row0}, FillAttr{});
  g.AddNode(OpKind::kFill, "fill.row1", {}, {row1}, FillAttr{});

  SECTION("dtypes") {
    const ValueId out = g.AddValue("out", kAct, {2, 4});
    g.AddNode(OpKind::kCopy, "copy", {seq}, {out});
    g.mutable_value(row1).dtype = DType::kInt32;
    ExpectPlanError(g, {}, {"value 'seq.row1'", "int32", "value 'seq'", "float32", "differ in dtype"});
  }
  SECTION("offsets") {
    // The output views row 1 while its base is row 0.
    const ValueId x_row = g.AddView("x.row0", ValueRole::kInput, {1, 4}, x, 0);
    const ValueId moved = g.AddView("seq.row1.acc", kAct, {1, 4}, seq, 4);
    g.AddNode(OpKind::kMatMul, "acc", {x_row, w, row0}, {moved}, Accumulate());
    ExpectPlanError(
        g, {}, {"node 'acc'", "value 'seq.row1.acc'", "over its base value 'seq.row0'", "4 elements after the base"});
  }
  SECTION("strides") {
    const ValueId x_row = g.AddView("x.row0", ValueRole::kInput, {1, 4}, x, 0);
    const ValueId strided = g.AddView("seq.row0.acc", kAct, {1, 4}, seq, 0, {4, 1});
    g.AddNode(OpKind::kMatMul, "acc", {x_row, w, row0}, {strided}, Accumulate());
    ExpectPlanError(g, {}, {"node 'acc'", "value 'seq.row0.acc'", "strides [4, 1]", "the base has contiguous"});
  }
}

// ---------------------------------------------------------------------------------------------
// Random graphs

struct RandomGraph {
  Graph graph;
  std::vector<ValueId> keep_alive;
};

// A random forward DAG of Copy, MatMul (plain and accumulating into a base), Fill, reading views
// (reshapes, strided rows and columns) and sequences assembled from two writing views (row halves,
// or strided column halves). Every base is dead after its accumulation, so the graph obeys the
// base rule.
RandomGraph MakeRandomGraph(std::mt19937& rng) {
  RandomGraph out;
  Graph& g = out.graph;
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  auto dim = [&] { return std::array<int64_t, 4>{1, 2, 3, 5}[pick(4)]; };
  std::vector<ValueId> readable;
  std::vector<Shape> strides;  // per value: its element strides (explicit, or contiguous over planned)
  std::vector<std::vector<ValueId>> views;
  auto track = [&](ValueId v, Shape s) {
    strides.resize(g.num_values());
    views.resize(g.num_values());
    strides[Index(v)] = s.empty() ? ContiguousStrides(g.value(v).planned) : std::move(s);
    if (g.value(v).view) views[Index(g.value(v).view->base)].push_back(v);
  };
  auto contiguous = [&](ValueId v) { return strides[Index(v)] == ContiguousStrides(g.value(v).planned); };
  auto name = [&](const char* what) { return std::string(what) + std::to_string(g.num_values()); };
  auto with_rows = [&](int64_t rows, ValueId avoid) {
    std::vector<ValueId> found;
    for (ValueId v : readable)
      if (v != avoid && g.value(v).planned[0] == rows) found.push_back(v);
    return found;
  };
  // An operand with `rows` rows: a readable value if there is one, else a new parameter.
  auto operand = [&](int64_t rows, ValueId avoid) {
    const std::vector<ValueId> found = with_rows(rows, avoid);
    if (!found.empty() && pick(4) != 0) return found[pick(found.size())];
    const ValueId p = g.AddParam(name("w"), {rows, dim()});
    track(p, {});
    return p;
  };
  auto add = [&](const char* what, Shape shape) {
    const ValueId v = g.AddValue(name(what), kAct, std::move(shape));
    track(v, {});
    return v;
  };

  for (int i = 0; i < 3; ++i) {
    readable.push_back(g.AddValue(name("in"), ValueRole::kInput, {dim(), dim()}));
    track(readable.back(), {});
  }
  const int nodes = 8 + static_cast<int>(pick(24));
  while (g.num_nodes() < nodes) {
    switch (pick(6)) {
      case 0: {  // copy
        const ValueId x = readable[pick(readable.size())];
        const ValueId y = add("copy", g.value(x).planned);
        g.AddNode(OpKind::kCopy, name("copy.node"), {x}, {y});
        readable.push_back(y);
        break;
      }
      case 1: {  // C = A B
        const ValueId a = readable[pick(readable.size())];
        const ValueId b = operand(g.value(a).planned[1], a);
        const ValueId c = add("mm", {g.value(a).planned[0], g.value(b).planned[1]});
        g.AddNode(OpKind::kMatMul, name("mm.node"), {a, b}, {c}, ops::MatMulAttr{});
        readable.push_back(c);
        break;
      }
      case 2: {  // C = A B + C0: the base C0 (produced or assembled, not a reading view) dies here
        std::vector<ValueId> bases;
        for (ValueId v : readable)
          if (!IsLeafRole(g.value(v).role) && (!g.value(v).view || g.value(v).producer != kNoNode)) bases.push_back(v);
        if (bases.empty()) break;
        const ValueId base = bases[pick(bases.size())];
        std::vector<ValueId> dead{base};
        for (size_t i = 0; i < dead.size(); ++i)
          for (ValueId view : views[Index(dead[i])]) dead.push_back(view);
        std::erase_if(readable, [&](ValueId v) { return std::find(dead.begin(), dead.end(), v) != dead.end(); });
        const Shape shape = g.value(base).planned;
        const ValueId a = operand(shape[0], base);
        const ValueId b = g.AddParam(name("w"), {g.value(a).planned[1], shape[1]});
        track(b, {});
        const ValueId c = g.AddValue(name("acc"), kAct, shape);
        track(c, strides[Index(base)]);
        g.AddNode(OpKind::kMatMul, name("acc.node"), {a, b, base}, {c}, Accumulate());
        readable.push_back(c);
        break;
      }
      case 3: {  // a reading view: a reshape of a contiguous value, or a strided row or column
        const ValueId x = readable[pick(readable.size())];
        const Value& v = g.value(x);
        // The verifier bounds a view by its storage root's planned size, so it takes no strided
        // view of a value that only inherits strides from its base.
        if (!v.view && !contiguous(x)) break;
        const int64_t rows = v.planned[0], cols = v.planned[1];
        const Shape s = strides[Index(x)];
        ValueId view;
        if (contiguous(x) && pick(2) == 0) {
          view = g.AddView(name("reshape"), v.role, {cols, rows}, x);
          track(view, {});
        } else if (pick(2) == 0) {
          view = g.AddView(name("row"), v.role, {1, cols}, x, static_cast<int64_t>(pick(rows)) * s[0], s);
          track(view, s);
        } else {
          view = g.AddView(name("col"), v.role, {rows, 1}, x, static_cast<int64_t>(pick(cols)) * s[1], s);
          track(view, s);
        }
        readable.push_back(view);
        break;
      }
      case 4: {  // a [2m, n] or [m, 2n] sequence written through two [m, n] views (row or column halves)
        const int64_t m = dim(), n = dim();
        const bool by_rows = pick(2) == 0;
        const ValueId seq = add("seq", by_rows ? Shape{2 * m, n} : Shape{m, 2 * n});
        for (int64_t half = 0; half < 2; ++half) {
          const Shape part_strides = by_rows ? Shape{} : Shape{2 * n, 1};
          const ValueId part =
              g.AddView(name("seq.part"), kAct, {m, n}, seq, by_rows ? half * m * n : half * n, part_strides);
          track(part, part_strides);
          std::vector<ValueId> sources;
          for (ValueId v : readable)
            if (g.value(v).planned == Shape{m, n}) sources.push_back(v);
          if (sources.empty())
            g.AddNode(OpKind::kFill, name("fill.node"), {}, {part}, FillAttr{});
          else
            g.AddNode(OpKind::kCopy, name("copy.node"), {sources[pick(sources.size())]}, {part});
          readable.push_back(part);
        }
        readable.push_back(seq);
        break;
      }
      default: {  // a fill
        const ValueId y = add("fill", {dim(), dim()});
        g.AddNode(OpKind::kFill, name("fill.node"), {}, {y}, FillAttr{});
        readable.push_back(y);
        break;
      }
    }
  }
  for (size_t i = pick(3); i > 0; --i) {
    const ValueId v = readable[pick(readable.size())];
    if (!IsLeafRole(g.value(v).role)) out.keep_alive.push_back(v);
  }
  return out;
}

// Storage classes as the IR defines them (views join their base, a base's output joins the base),
// by plain connectivity.
std::vector<int32_t> ExpectedClasses(const Graph& g) {
  std::vector<int32_t> parent(g.num_values());
  std::iota(parent.begin(), parent.end(), 0);
  auto find = [&](int32_t v) {
    while (parent[v] != v) v = parent[v];
    return v;
  };
  auto join = [&](ValueId a, ValueId b) { parent[find(Index(a))] = find(Index(b)); };
  for (const Value& v : g.values())
    if (v.view) join(v.id, v.view->base);
  for (const Node& n : g.nodes())
    if (n.has_base()) join(n.outputs[0], n.inputs.back());
  std::vector<int32_t> klass(g.num_values());
  for (int32_t v = 0; v < g.num_values(); ++v) klass[v] = find(v);
  return klass;
}

TEST_CASE("PlanMemory never lets two values live at the same time share a byte (random graphs)", "[memory_plan]") {
  std::mt19937 rng(20240611);
  int64_t shared = 0;
  for (int trial = 0; trial < 300; ++trial) {
    INFO("trial " << trial);
    const RandomGraph random = MakeRandomGraph(rng);
    const Graph& g = random.graph;
    ExpectValid(g);
    const MemoryPlan plan = Plan(g, {.keep_alive = random.keep_alive, .alignment_bytes = 16});
    REQUIRE(plan.values.size() == static_cast<size_t>(g.num_values()));
    CHECK(plan.arena_bytes <= plan.unshared_bytes);
    shared += plan.unshared_bytes - plan.arena_bytes;

    // Buffers are exactly the storage classes; external exactly when a member is a leaf.
    const std::vector<int32_t> klass = ExpectedClasses(g);
    for (int32_t u = 0; u < g.num_values(); ++u)
      for (int32_t v = 0; v < u; ++v)
        REQUIRE((klass[u] == klass[v]) == (plan.values[u].buffer == plan.values[v].buffer));
    for (const PlannedBuffer& b : plan.buffers) {
      bool leaf = false;
      for (ValueId m : b.members) leaf = leaf || IsLeafRole(g.value(m).role);
      CHECK(b.external == leaf);
      if (!b.external) CHECK(b.offset_bytes % 16 == 0);
    }
    auto in_arena = [&](ValueId v) { return !BufferOf(plan, v).external; };

    // Each value's own lifetime: the nodes that touch it, to the end if kept alive.
    std::vector<int> first(g.num_values(), INT32_MAX), last(g.num_values(), -1);
    for (const Node& n : g.nodes()) {
      for (const std::vector<ValueId>* operands : {&n.inputs, &n.outputs})
        for (ValueId v : *operands) {
          first[Index(v)] = std::min(first[Index(v)], Index(n.id));
          last[Index(v)] = std::max(last[Index(v)], Index(n.id));
        }
    }
    for (ValueId v : random.keep_alive) last[Index(v)] = g.num_nodes() - 1;

    // Every pair of arena values of different classes that are live at the same node: disjoint.
    std::vector<std::pair<int64_t, int64_t>> range(g.num_values());
    for (const Value& v : g.values()) {
      if (!in_arena(v.id)) continue;
      const std::vector<int64_t> at = ArenaElements(g, plan, v.id);
      if (at.empty()) continue;
      range[Index(v.id)] = {*std::min_element(at.begin(), at.end()), *std::max_element(at.begin(), at.end()) + 1};
      REQUIRE(range[Index(v.id)].second * 4 <= plan.arena_bytes);
    }
    for (int32_t u = 0; u < g.num_values(); ++u)
      for (int32_t v = 0; v < u; ++v) {
        if (!in_arena(ValueId{u}) || !in_arena(ValueId{v}) || klass[u] == klass[v]) continue;
        if (last[u] < 0 || last[v] < 0 || first[u] > last[v] || first[v] > last[u]) continue;
        INFO(DescribeValue(g.value(ValueId{u})) << " and " << DescribeValue(g.value(ValueId{v})));
        REQUIRE((range[u].second <= range[v].first || range[v].second <= range[u].first));
      }

    // Run the graph on an arena that records which class last wrote each element: every read
    // (and every kept-alive value at the end) must find its own class's data.
    std::vector<int32_t> writer(static_cast<size_t>(plan.arena_bytes / 4), -1);
    auto read = [&](ValueId v, const std::string& where) {
      if (!in_arena(v)) return;
      for (int64_t at : ArenaElements(g, plan, v)) {
        INFO(where << " reads " << DescribeValue(g.value(v)) << " at arena element " << at);
        REQUIRE(writer[at] == klass[Index(v)]);
      }
    };
    for (const Node& n : g.nodes()) {
      for (ValueId in : n.inputs) read(in, DescribeNode(n));
      for (ValueId o : n.outputs)
        if (in_arena(o))
          for (int64_t at : ArenaElements(g, plan, o)) writer[at] = klass[Index(o)];
    }
    for (ValueId v : random.keep_alive) read(v, "keep_alive");
  }
  CHECK(shared > 0);  // the graphs do reuse bytes
}

}  // namespace
}  // namespace sieve::graph
