// Tests of the Fill node's kernel (runtime/kernel_table.cc) on the CPU: zero fills of large buffers are split
// over the OpenMP team, and every fill, split or not, writes exactly the output's elements (none of its
// neighbours in the same storage) whatever the thread count. Not a test of where the autodiff emits fills.
#include <omp.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <vector>

#include "graph/attrs.h"
#include "graph/ir.h"
#include "runtime/backend.h"

namespace sieve::runtime {
namespace {

constexpr float kSentinel = 7.5f;

// Runs a Fill node with `value` over `out` through RunKernel.
Status RunFill(const Tensor& out, float value) {
  graph::Graph g;
  const graph::ValueId y = g.AddValue("y", graph::ValueRole::kActivationGrad, out.shape());
  const graph::NodeId fill = g.AddNode(graph::OpKind::kFill, "y.fill", {}, {y}, graph::FillAttr{value});
  const std::vector<Tensor> outputs = {out};
  return RunKernel(NodeCall{g.node(fill), {}, outputs});
}

// Sets the OpenMP team size for one scope, restoring the previous one.
class TeamSize {
 public:
  explicit TeamSize(int threads) : previous_(omp_get_max_threads()) { omp_set_num_threads(threads); }
  ~TeamSize() { omp_set_num_threads(previous_); }

 private:
  int previous_;
};

// A buffer of `total` sentinel floats; the fill covers [offset, offset + count).
void CheckContiguousFill(int64_t total, int64_t offset, int64_t count, float value) {
  Tensor storage = Tensor::Empty({total});
  float* data = storage.data<float>();
  for (int64_t i = 0; i < total; ++i) data[i] = kSentinel;
  const Tensor out = storage.View(offset * static_cast<int64_t>(sizeof(float)), DType::kFloat32, {count}, {1});
  REQUIRE(RunFill(out, value).ok());
  int64_t wrong = 0, first_wrong = -1;
  for (int64_t i = 0; i < total; ++i) {
    const float expected = i >= offset && i < offset + count ? value : kSentinel;
    if (data[i] != expected) {
      if (first_wrong < 0) first_wrong = i;
      ++wrong;
    }
  }
  INFO("total " << total << ", offset " << offset << ", count " << count << ", value " << value
                << ", first wrong element " << first_wrong);
  CHECK(wrong == 0);
}

TEST_CASE("Fill zeroes large and small CPU buffers exactly for any team size", "[eff][runtime]") {
  // 2^18 bytes is where zero fills start to split; sizes around it, odd element counts and offsets that
  // are not a multiple of a cache line, so that the pieces' ends fall anywhere.
  const std::vector<int64_t> counts = {1, 1000, (int64_t{1} << 16) - 1, int64_t{1} << 16, (int64_t{1} << 16) + 3,
                                       1'000'003};
  for (const int threads : {1, 2, 3, 8}) {
    TeamSize team(threads);
    for (const int64_t count : counts) {
      for (const int64_t offset : {int64_t{0}, int64_t{5}}) {
        CAPTURE(threads);
        CheckContiguousFill(count + 2 * offset + 11, offset, count, 0.0f);
      }
    }
  }
}

TEST_CASE("Fill writes non-zero values and zero fills of strided views only into the output", "[eff][runtime]") {
  TeamSize team(2);
  CheckContiguousFill(300'011, 7, 300'000, -1.25f);

  // Rows of a 2-D view with a leading dimension: the gaps between rows keep their values.
  const int64_t rows = 257, cols = 1000, ld = 1003;
  Tensor storage = Tensor::Empty({rows * ld});
  float* data = storage.data<float>();
  for (int64_t i = 0; i < rows * ld; ++i) data[i] = kSentinel;
  REQUIRE(RunFill(storage.MatrixView(0, rows, cols, ld), 0.0f).ok());
  int64_t wrong = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < ld; ++c) wrong += data[r * ld + c] != (c < cols ? 0.0f : kSentinel);
  CHECK(wrong == 0);
}

}  // namespace
}  // namespace sieve::runtime
