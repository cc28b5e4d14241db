// Tests for Tensor: construction, views without copies, reshape errors, copies.
#include <catch2/catch.hpp>

#include <numeric>

#include "framework/tensor.h"

namespace sieve {
namespace {

Tensor Iota(Shape shape) {
  std::vector<float> v(static_cast<size_t>(ShapeNumel(shape)));
  std::iota(v.begin(), v.end(), 0.0f);
  return Tensor::FromVector(std::move(shape), v);
}

TEST_CASE("Tensor storage is aligned and contiguous", "[framework]") {
  Tensor t = Tensor::Zeros({3, 5});
  CHECK(t.numel() == 15);
  CHECK(t.is_contiguous());
  CHECK(t.strides() == Shape{5, 1});
  CHECK(reinterpret_cast<uintptr_t>(t.raw_data()) % kCpuAlignment == 0);
  CHECK(t.ToString() == "float32[3, 5] on cpu");
  for (float x : t.ToVector()) CHECK(x == 0.0f);
}

TEST_CASE("Slice and MatrixView are views that share storage", "[framework]") {
  Tensor t = Iota({4, 6});
  Tensor every_other_row = t.Slice(0, 1, 4, 2);  // rows 1, 3
  CHECK(every_other_row.shape() == Shape{2, 6});
  CHECK(every_other_row.stride(0) == 12);
  CHECK_FALSE(every_other_row.is_contiguous());
  CHECK(every_other_row.SharesStorageWith(t));
  CHECK(every_other_row.ToVector() == std::vector<float>{6, 7, 8, 9, 10, 11, 18, 19, 20, 21, 22, 23});

  Tensor strided = t.MatrixView(2, 2, 3, 12);  // rows 0 and 2, columns 2..4
  CHECK(strided.ToVector() == std::vector<float>{2, 3, 4, 14, 15, 16});
  strided.Fill(-1.0f);
  CHECK(t.ToVector()[2] == -1.0f);
  CHECK(t.ToVector()[14] == -1.0f);
  CHECK(t.ToVector()[8] == 8.0f);

  // An empty view addresses nothing: any offset is fine, even into an empty tensor.
  Tensor empty = Tensor::Empty({0, 47}, DType::kFloat32, Device::CPU());
  CHECK(empty.MatrixView(1, 0, 47, 47).numel() == 0);
}

TEST_CASE("View places a tensor of any dtype at a byte offset and checks bounds", "[framework]") {
  Tensor arena = Tensor::Zeros({16});
  Tensor ints = arena.View(8, DType::kInt32, {2, 2}, {4, 1});  // elements 2, 3, 6, 7
  ints.data<int32_t>()[0] = 7;
  CHECK(ints.dtype() == DType::kInt32);
  CHECK(ints.SharesStorageWith(arena));
  CHECK(ints.offset() == 2);
  Tensor floats = arena.View(24, DType::kFloat32, {3}, {3});  // elements 6, 9, 12
  floats.data<float>()[0] = 1.5f;
  CHECK(arena.ToVector()[6] == 1.5f);
  CHECK(floats.numel() == 3);
}

TEST_CASE("Reshape needs matching counts and contiguity", "[framework]") {
  Tensor t = Iota({4, 6});
  auto r = t.Reshape({2, 12});
  REQUIRE(r.ok());
  CHECK(r->ToVector() == t.ToVector());
  auto bad = t.Reshape({5, 5});
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.status().message(), Catch::Contains("[4, 6]") && Catch::Contains("[5, 5]"));
  auto strided = t.Slice(1, 0, 6, 2).Reshape({12});
  REQUIRE_FALSE(strided.ok());
  CHECK(strided.status().code() == StatusCode::kFailedPrecondition);
}

TEST_CASE("Clone and CopyFrom copy elements", "[framework]") {
  Tensor t = Iota({3, 4});
  Tensor c = t.Slice(1, 1, 3).Clone();
  CHECK(c.is_contiguous());
  CHECK(c.ToVector() == std::vector<float>{1, 2, 5, 6, 9, 10});
  Tensor d = Tensor::Zeros({3, 4});
  REQUIRE(d.CopyFrom(t).ok());
  CHECK(d.ToVector() == t.ToVector());
  CHECK_FALSE(d.CopyFrom(c).ok());
}

}  // namespace
}  // namespace sieve
