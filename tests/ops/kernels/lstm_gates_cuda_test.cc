// CUDA LSTM gates against the CPU: strided step views, absent gradients, in place.
#include <catch2/catch.hpp>
#include <random>
#include <vector>

#include "ops/kernels/lstm_gates.h"
#include "tests/testing/random_tensors.h"

namespace sieve::ops {
namespace {

using testing::CheckClose;
using testing::RandomTensor;

// Both sides are a few ulps from the exact values; c and h combine several of them.
constexpr double kRtol = 1e-5;
constexpr double kAtol = 1e-6;

TEST_CASE("CUDA LstmGates match the CPU", "[cuda][ops][kernels][lstm]") {
  std::mt19937 rng(107);
  struct Case {
    int64_t batch, steps, hidden;
  };
  const std::vector<Case> cases = {{1, 1, 1}, {3, 1, 5}, {4, 3, 7}, {2, 2, 300}, {64, 1, 650}, {16, 4, 33}};
  const Device gpu = Device::CUDA();
  for (const Case& k : cases)
    for (const bool absent : {false, true}) {
      INFO("batch " << k.batch << ", steps " << k.steps << ", hidden " << k.hidden << (absent ? ", no dc_next" : ""));
      const int64_t t = k.steps - 1, hid = k.hidden;
      // Step t of [B, T, blocks * H] sequences.
      auto step = [&](const Tensor& seq, int64_t blocks) {
        return seq.MatrixView(t * blocks * hid, k.batch, blocks * hid, k.steps * blocks * hid);
      };
      const Tensor preact = RandomTensor({k.batch, k.steps * 4 * hid}, rng, -5.0f, 5.0f);
      const Tensor c_prev = RandomTensor({k.batch, k.steps * hid}, rng, -3.0f, 3.0f);
      const Tensor h = RandomTensor({k.batch, k.steps * hid}, rng), c = RandomTensor({k.batch, k.steps * hid}, rng);
      const Tensor gates = RandomTensor({k.batch, k.steps * 4 * hid}, rng);
      const Tensor h_gpu = h.Clone(gpu), c_gpu = c.Clone(gpu), gates_gpu = gates.Clone(gpu);
      const Tensor preact_gpu = preact.Clone(gpu), c_prev_gpu = c_prev.Clone(gpu);
      REQUIRE(LstmGatesForward(step(preact, 4), step(c_prev, 1), step(h, 1), step(c, 1), step(gates, 4)).ok());
      REQUIRE(
          LstmGatesForward(step(preact_gpu, 4), step(c_prev_gpu, 1), step(h_gpu, 1), step(c_gpu, 1), step(gates_gpu, 4))
              .ok());
      CheckClose(h_gpu.ToVector(), h.ToVector(), kRtol, kAtol);
      CheckClose(c_gpu.ToVector(), c.ToVector(), kRtol, kAtol);
      CheckClose(gates_gpu.ToVector(), gates.ToVector(), kRtol, kAtol);

      // The backward from the CPU forward's results, on both devices.
      const Tensor dh = RandomTensor({k.batch, k.steps * hid}, rng),
                   dc_next = RandomTensor({k.batch, k.steps * hid}, rng);
      const Tensor dpreact = RandomTensor({k.batch, k.steps * 4 * hid}, rng);
      const Tensor dc_prev = RandomTensor({k.batch, k.steps * hid}, rng);
      const Tensor dpreact_gpu = dpreact.Clone(gpu), dc_prev_gpu = dc_prev.Clone(gpu);
      const Tensor dh_step = step(dh, 1), dc_step = step(dc_next, 1);
      REQUIRE(LstmGatesBackward(step(gates, 4), step(c_prev, 1), step(c, 1), &dh_step, absent ? nullptr : &dc_step,
                                step(dpreact, 4), step(dc_prev, 1))
                  .ok());
      const Tensor dh_gpu = step(dh.Clone(gpu), 1), dc_gpu = step(dc_next.Clone(gpu), 1);
      REQUIRE(LstmGatesBackward(step(gates.Clone(gpu), 4), step(c_prev_gpu, 1), step(c.Clone(gpu), 1), &dh_gpu,
                                absent ? nullptr : &dc_gpu, step(dpreact_gpu, 4), step(dc_prev_gpu, 1))
                  .ok());
      CheckClose(dpreact_gpu.ToVector(), dpreact.ToVector(), kRtol, kAtol);
      CheckClose(dc_prev_gpu.ToVector(), dc_prev.ToVector(), kRtol, kAtol);

      // In place on the device: gates over preact and c over c_prev, then dpreact over gates.
      const Tensor pre2 = preact.Clone(gpu), cp2 = c_prev.Clone(gpu), h2 = h.Clone(gpu);
      REQUIRE(LstmGatesForward(step(pre2, 4), step(cp2, 1), step(h2, 1), step(cp2, 1), step(pre2, 4)).ok());
      CheckClose(step(pre2, 4).ToVector(), step(gates, 4).ToVector(), kRtol, kAtol);
      CheckClose(step(cp2, 1).ToVector(), step(c, 1).ToVector(), kRtol, kAtol);
      const Tensor g2 = gates.Clone(gpu);
      REQUIRE(LstmGatesBackward(step(g2, 4), step(c_prev_gpu, 1), step(c.Clone(gpu), 1), &dh_gpu,
                                absent ? nullptr : &dc_gpu, step(g2, 4), step(dc_prev_gpu, 1))
                  .ok());
      CheckClose(step(g2, 4).ToVector(), step(dpreact, 4).ToVector(), kRtol, kAtol);
    }
}

}  // namespace
}  // namespace sieve::ops
