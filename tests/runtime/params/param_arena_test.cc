// Tests for ParamArena (runtime/params/param_arena.h): the aligned layout of one buffer per role,
// views that alias the flat buffers without overlapping, iteration order, initialisation from the
// seed, and every error a user can cause, each naming the parameter.
#include "runtime/params/param_arena.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace sieve::runtime {
namespace {

// Five parameters of awkward sizes: 35, 7, 1 (a scalar), 54 and 1 elements.
void RegisterMixed(ParamArena& arena) {
  REQUIRE(arena.Register("fc1.w", {7, 5}, {.init = InitSpec::Xavier()}).ok());
  REQUIRE(arena.Register("fc1.b", {7}, {.lr_mult = 2.0f, .decay_mult = 0.0f, .init = InitSpec::Constant(0.1f)}).ok());
  REQUIRE(arena.Register("scale", {}, {.init = InitSpec::Constant(1.0f)}).ok());
  REQUIRE(arena.Register("conv.w", {3, 2, 3, 3}, {.init = InitSpec::Msra()}).ok());
  REQUIRE(arena.Register("fc2.w", {1, 1}, {.init = InitSpec::Uniform(-1.0f, 1.0f)}).ok());
}

bool AllZero(const Tensor& t) {
  const std::vector<float> v = t.ToVector();
  return std::all_of(v.begin(), v.end(), [](float x) { return x == 0.0f; });
}

TEST_CASE("Finalize lays every parameter out 64-byte aligned in one buffer per role", "[runtime][params][arena]") {
  ParamArena arena;
  RegisterMixed(arena);
  REQUIRE(arena.Finalize(Device::CPU(), ops::SolverType::kAdam).ok());
  REQUIRE(arena.finalized());
  CHECK(arena.size() == 5);
  CHECK(arena.state_slots() == 2);
  CHECK(arena.param_elements() == 35 + 7 + 1 + 54 + 1);
  // Offsets 0, 48, 64, 80, 144: each region rounded up to 16 floats; the total too.
  const std::vector<int64_t> want_offsets = {0, 48, 64, 80, 144};
  CHECK(arena.total_elements() == 160);

  const Tensor flat_params = *arena.flat_params();
  const Tensor flat_grads = *arena.flat_grads();
  const Tensor flat_m = *arena.flat_state(0);
  const Tensor flat_v = *arena.flat_state(1);
  for (const Tensor* flat : {&flat_params, &flat_grads, &flat_m, &flat_v}) {
    CHECK(flat->shape() == Shape{160});
    CHECK(AllZero(*flat));
  }
  CHECK_FALSE(flat_params.SharesStorageWith(flat_grads));
  CHECK_FALSE(flat_m.SharesStorageWith(flat_v));

  const std::vector<std::string> want_names = {"fc1.w", "fc1.b", "scale", "conv.w", "fc2.w"};
  size_t i = 0;
  int64_t previous_end = 0;
  for (const ParamEntry& e : arena) {
    INFO("parameter " << e.name);
    REQUIRE(i < want_names.size());
    CHECK(e.name == want_names[i]);
    CHECK(e.offset == want_offsets[i]);
    CHECK(e.offset % kParamAlignElements == 0);
    CHECK(e.offset >= previous_end);  // regions in order, never overlapping
    previous_end = e.offset + ShapeNumel(e.shape);
    REQUIRE(e.state.size() == 2);
    const Tensor* views[] = {&e.param, &e.grad, &e.state[0], &e.state[1]};
    const Tensor* flats[] = {&flat_params, &flat_grads, &flat_m, &flat_v};
    for (int r = 0; r < 4; ++r) {
      CHECK(views[r]->shape() == e.shape);
      CHECK(views[r]->is_contiguous());
      CHECK(views[r]->SharesStorageWith(*flats[r]));
      CHECK(reinterpret_cast<uintptr_t>(views[r]->raw_data()) % kParamAlignBytes == 0);
      CHECK(views[r]->data<float>() == flats[r]->data<float>() + e.offset);
    }
    ++i;
  }
  CHECK(i == want_names.size());
  CHECK(previous_end <= arena.total_elements());

  // Named lookup returns the same views, and writes through them land at the region in the buffer.
  const Tensor conv_grad = *arena.grad("conv.w");
  CHECK(conv_grad.data<float>() == flat_grads.data<float>() + 80);
  conv_grad.data<float>()[53] = 7.0f;
  CHECK(flat_grads.data<float>()[80 + 53] == 7.0f);
  CHECK(arena.state(1, "scale")->data<float>() == flat_v.data<float>() + 64);
  CHECK(*arena.IndexOf("fc2.w") == 4);
}

TEST_CASE("Every view of every parameter covers its own elements only", "[runtime][params][arena]") {
  // Mark each parameter's view with its index + 1; the flat buffer must then hold exactly
  // numel(p) marks of p, and zeros in the padding.
  ParamArena arena;
  RegisterMixed(arena);
  REQUIRE(arena.Finalize(Device::CPU(), ops::SolverType::kSGD).ok());
  CHECK(arena.state_slots() == 1);
  for (int64_t p = 0; p < arena.size(); ++p) {
    const ParamEntry& e = arena.entries()[static_cast<size_t>(p)];
    std::fill_n(e.param.data<float>(), e.param.numel(), static_cast<float>(p + 1));
  }
  const std::vector<float> flat = arena.flat_params()->ToVector();
  for (int64_t p = 0; p < arena.size(); ++p) {
    const ParamEntry& e = arena.entries()[static_cast<size_t>(p)];
    CHECK(std::count(flat.begin(), flat.end(), static_cast<float>(p + 1)) == ShapeNumel(e.shape));
  }
  CHECK(std::count(flat.begin(), flat.end(), 0.0f) == arena.total_elements() - arena.param_elements());
}

TEST_CASE("ZeroGrads clears every gradient", "[runtime][params][arena]") {
  ParamArena arena;
  RegisterMixed(arena);
  REQUIRE(arena.Finalize(Device::CPU(), ops::SolverType::kSGD).ok());
  for (const ParamEntry& e : arena) std::fill_n(e.grad.data<float>(), e.grad.numel(), 3.0f);
  CHECK_FALSE(AllZero(*arena.flat_grads()));
  REQUIRE(arena.ZeroGrads().ok());
  CHECK(AllZero(*arena.flat_grads()));
}

TEST_CASE("Initialize draws parameter i from the init stream of site i", "[runtime][params][arena]") {
  ParamArena a, b, c;
  for (ParamArena* arena : {&a, &b, &c}) {
    RegisterMixed(*arena);
    // Same shape and spec as fc1.w: it must still get its own values from its own stream.
    REQUIRE(arena->Register("fc1.w.twin", {7, 5}, {.init = InitSpec::Xavier()}).ok());
    REQUIRE(arena->Finalize(Device::CPU(), ops::SolverType::kNesterov).ok());
  }
  REQUIRE(a.Initialize(2024).ok());
  REQUIRE(b.Initialize(2024).ok());
  REQUIRE(c.Initialize(2025).ok());
  const std::vector<float> fa = a.flat_params()->ToVector(), fb = b.flat_params()->ToVector(),
                           fc = c.flat_params()->ToVector();
  CHECK(std::memcmp(fa.data(), fb.data(), fa.size() * sizeof(float)) == 0);
  CHECK(fa != fc);
  CHECK(a.param("fc1.w")->ToVector() != a.param("fc1.w.twin")->ToVector());
  for (float v : a.param("fc1.b")->ToVector()) CHECK(v == 0.1f);
  CHECK(a.param("scale")->ToVector() == std::vector<float>{1.0f});

  for (int64_t i = 0; i < a.size(); ++i) {
    const ParamEntry& e = a.entries()[static_cast<size_t>(i)];
    INFO("parameter " << e.name);
    Tensor want = Tensor::Empty(e.shape);
    REQUIRE(Initialize(want, e.spec.init, RandomStream{2024, MakeStreamId(StreamKind::kInit, i, 0)}).ok());
    CHECK(e.param.ToVector() == want.ToVector());
  }
  // The padding is not touched, and nothing but the weights is.
  int64_t nonzero = 0;
  for (float v : fa) nonzero += v != 0.0f;
  CHECK(nonzero <= a.param_elements());
  CHECK(AllZero(*a.flat_grads()));
  CHECK(AllZero(*a.flat_state(0)));
}

TEST_CASE("Registration errors name the parameter", "[runtime][params][arena]") {
  ParamArena arena;
  REQUIRE(arena.Register("fc1.w", {4, 3}).ok());
  const Status duplicate = arena.Register("fc1.w", {5, 3});
  CHECK(duplicate.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(duplicate.message(), Catch::Contains("duplicate parameter 'fc1.w' [5, 3]") && Catch::Contains("[4, 3]"));
  const Status empty_name = arena.Register("", {2});
  CHECK(empty_name.code() == StatusCode::kInvalidArgument);
  const Status zero_extent = arena.Register("fc2.w", {0, 3});
  CHECK(zero_extent.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(zero_extent.message(), Catch::Contains("'fc2.w'") && Catch::Contains("[0, 3]"));
  const Status bad_mult = arena.Register("fc2.b", {3}, {.lr_mult = NAN});
  CHECK(bad_mult.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(bad_mult.message(), Catch::Contains("'fc2.b'"));
  const Status bad_init = arena.Register("fc2.b", {3}, {.init = InitSpec::Uniform(1.0f, 0.0f)});
  CHECK(bad_init.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(bad_init.message(), Catch::Contains("'fc2.b'") && Catch::Contains("uniform(1, 0)"));
  CHECK(arena.size() == 1);  // nothing half-registered
}

TEST_CASE("Use before Finalize is a Status naming the parameter", "[runtime][params][arena]") {
  ParamArena arena;
  REQUIRE(arena.Register("fc1.w", {4, 3}).ok());
  const StatusOr<Tensor> early = arena.param("fc1.w");
  REQUIRE_FALSE(early.ok());
  CHECK(early.status().code() == StatusCode::kFailedPrecondition);
  CHECK_THAT(early.status().message(), Catch::Contains("'fc1.w' [4, 3]") && Catch::Contains("Finalize"));
  CHECK(arena.grad("fc1.w").status().code() == StatusCode::kFailedPrecondition);
  CHECK(arena.state(0, "fc1.w").status().code() == StatusCode::kFailedPrecondition);
  CHECK(arena.flat_params().status().code() == StatusCode::kFailedPrecondition);
  CHECK(arena.flat_grads().status().code() == StatusCode::kFailedPrecondition);
  CHECK(arena.flat_state(0).status().code() == StatusCode::kFailedPrecondition);
  CHECK(arena.Initialize(1).code() == StatusCode::kFailedPrecondition);
  CHECK(arena.ZeroGrads().code() == StatusCode::kFailedPrecondition);
}

TEST_CASE("Unknown names suggest the nearest parameter", "[runtime][params][arena]") {
  ParamArena empty;
  const StatusOr<int64_t> none = empty.IndexOf("fc1.w");
  CHECK(none.status().code() == StatusCode::kNotFound);
  CHECK_THAT(none.status().message(), Catch::Contains("holds no parameters"));

  ParamArena arena;
  RegisterMixed(arena);
  REQUIRE(arena.Finalize(Device::CPU(), ops::SolverType::kSGD).ok());
  const StatusOr<Tensor> typo = arena.param("conv_w");
  REQUIRE_FALSE(typo.ok());
  CHECK(typo.status().code() == StatusCode::kNotFound);
  CHECK_THAT(typo.status().message(),
             Catch::Contains("unknown parameter 'conv_w'") && Catch::Contains("did you mean 'conv.w' [3, 2, 3, 3]"));
  CHECK_THAT(arena.grad("fc1.W").status().message(), Catch::Contains("did you mean 'fc1.w'"));
  CHECK_THAT(arena.state(0, "fc2.v").status().message(), Catch::Contains("did you mean 'fc2.w'"));
}

TEST_CASE("A finalized arena refuses changes and out-of-range slots", "[runtime][params][arena]") {
  ParamArena arena;
  RegisterMixed(arena);
  REQUIRE(arena.Finalize(Device::CPU(), ops::SolverType::kSGD).ok());
  const Status late = arena.Register("fc3.w", {2, 2});
  CHECK(late.code() == StatusCode::kFailedPrecondition);
  CHECK_THAT(late.message(), Catch::Contains("'fc3.w'") && Catch::Contains("already finalized"));
  CHECK(arena.Finalize(Device::CPU(), ops::SolverType::kSGD).code() == StatusCode::kFailedPrecondition);
  const StatusOr<Tensor> slot = arena.state(1, "fc1.b");
  CHECK(slot.status().code() == StatusCode::kOutOfRange);
  CHECK_THAT(slot.status().message(), Catch::Contains("'fc1.b' [7]") && Catch::Contains("SGD, which keeps 1"));
  CHECK(arena.flat_state(-1).status().code() == StatusCode::kOutOfRange);
}

TEST_CASE("An empty arena finalizes to empty buffers", "[runtime][params][arena]") {
  ParamArena arena;
  REQUIRE(arena.Finalize(Device::CPU(), ops::SolverType::kAdam).ok());
  CHECK(arena.total_elements() == 0);
  CHECK(arena.flat_params()->numel() == 0);
  CHECK(arena.HasUniformMults());
  REQUIRE(arena.Initialize(1).ok());
  REQUIRE(arena.ZeroGrads().ok());
}

TEST_CASE("Uniform multipliers are detected", "[runtime][params][arena]") {
  ParamArena arena;
  REQUIRE(arena.Register("a", {3}, {.lr_mult = 0.5f, .decay_mult = 2.0f}).ok());
  REQUIRE(arena.Register("b", {3}, {.lr_mult = 0.5f, .decay_mult = 2.0f}).ok());
  CHECK(arena.HasUniformMults());
  REQUIRE(arena.Register("c", {3}, {.lr_mult = 0.5f, .decay_mult = 1.0f}).ok());
  CHECK_FALSE(arena.HasUniformMults());
}

TEST_CASE("A CUDA arena is refused exactly when no GPU is usable", "[runtime][params][arena]") {
  ParamArena arena;
  REQUIRE(arena.Register("fc1.w", {4, 3}).ok());
  const Status status = arena.Finalize(Device::CUDA(), ops::SolverType::kSGD);
  if (CudaAvailable()) {
    CHECK(status.ok());
    CHECK(arena.param("fc1.w")->device() == Device::CUDA());
  } else {
    CHECK(status.code() == StatusCode::kUnavailable);
    CHECK_THAT(status.message(), Catch::Contains("cuda:0"));
    CHECK_FALSE(arena.finalized());
  }
}

}  // namespace
}  // namespace sieve::runtime
