// The lowered Conv2d (graph/lower/conv2d.cc) after AppendBackward, run by the CPU executor, against
// a naive double reference of the convolution's forward and whole backward (dW, db, dx): padded,
// unpadded and strided geometries, each dense and under a channel site whose kept maps are set by
// hand (dropped maps read as zero, the kept ones scaled by Cin / kept; the dropped maps' weight
// columns and input gradients exactly zero). The finite-difference checks of whole networks are in
// tests/runtime; this pins every gradient of the layer to a reference directly.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "graph/autodiff.h"
#include "graph/lower.h"
#include "graph/pass.h"
#include "graph/sequential.h"
#include "graph/verify.h"
#include "runtime/executor.h"
#include "runtime/params/param_arena.h"
#include "tests/testing/random_tensors.h"

namespace sieve::graph {
namespace {

using sieve::testing::CheckClose;

struct ConvCase {
  int64_t channels, size, filters, kernel, stride, pad, batch;
  bool bias;
};

// data [C, S, S] -> pre (1x1 conv, C maps) -> act (ReLU) -> [drop: channel site p = 0.4] -> conv
// -> flat -> fc (3) -> loss. `pre` makes the conv's input need a gradient.
Network CaseNet(const ConvCase& c, bool site) {
  Sequential net({c.channels, c.size, c.size});
  net.Add(Conv2d(c.channels, 1), "pre").Add(ReLU(), "act");
  if (site) net.Add(RandomChannelDropout(0.4), "drop");
  Conv2dSpec conv{.filters = c.filters, .kernel = c.kernel, .stride = c.stride, .pad = c.pad, .bias = c.bias};
  net.Add(conv, "conv").Add(Flatten(), "flat").Add(FullyConnected(3), "fc");
  StatusOr<Network> built = net.Build();
  INFO(built.status().ToString());
  REQUIRE(built.ok());
  return *built;
}

// The training graph of `network`: lowered, differentiated and verified.
LoweredNet Differentiated(const Network& network, int64_t batch) {
  StatusOr<LoweredNet> lowered = Lower(network, {.batch = batch, .training = true});
  INFO(lowered.status().ToString());
  REQUIRE(lowered.ok());
  StatusOr<Gradients> grads = AppendBackward(lowered->graph, {lowered->losses.front().node}, lowered->custom_gradients);
  INFO(grads.status().ToString());
  REQUIRE(grads.ok());
  const Status verified = Verify(lowered->graph);
  INFO(verified.ToString());
  REQUIRE(verified.ok());
  return std::move(lowered).value();
}

// The training graph on the CPU executor with its parameters from seed 7 and, with a site, the
// kept maps set.
struct Run {
  LoweredNet net;
  runtime::ParamArena arena;
  std::unique_ptr<runtime::Executor> exec;

  Run(const Network& network, int64_t batch, const std::vector<int64_t>* kept) : net(Differentiated(network, batch)) {
    if (kept != nullptr) {
      net.graph.SetSitePattern(*net.graph.FindSite("drop.site"), ops::ChannelSet{*kept});
      PassContext context;
      REQUIRE(MakeIterationPipeline({}).Run(net.graph, context).ok());
    }
    for (const ParamDecl& p : net.params) REQUIRE(arena.Register(p.name, p.shape, p.spec).ok());
    REQUIRE(arena.Finalize(Device::CPU(), ops::SolverType::kSGD).ok());
    REQUIRE(arena.Initialize(7).ok());
    MemoryPlanOptions plan;
    for (const char* name : {"act.out", "act.out.grad", "conv.out", "conv.out.grad"})
      plan.keep_alive.push_back(Id(name));
    StatusOr<std::unique_ptr<runtime::Executor>> created = runtime::Executor::Create(net.graph, Device::CPU(), plan);
    INFO(created.status().ToString());
    REQUIRE(created.ok());
    exec = std::move(*created);
    for (const ParamDecl& p : net.params) {
      REQUIRE(exec->Bind(p.value, *arena.param(p.name)).ok());
      REQUIRE(exec->Bind(*net.graph.FindValue(p.name + ".grad"), *arena.grad(p.name)).ok());
    }
  }

  ValueId Id(const std::string& name) const {
    StatusOr<ValueId> id = net.graph.FindValue(name);
    INFO(id.status().ToString());
    REQUIRE(id.ok());
    return *id;
  }

  std::vector<float> Get(const std::string& value) const {
    StatusOr<Tensor> t = exec->Get(Id(value));
    REQUIRE(t.ok());
    return t->ToVector();
  }
};

struct Reference {
  std::vector<float> y, dw, db, dx;
};

// The convolution of x [B, C, S, S] (maps not in `kept` read as zero, the others scaled by C /
// kept) with w [F, C*k*k], and its backward from dy, in double.
Reference Convolve(const ConvCase& c, const std::vector<float>& x, const std::vector<float>& w,
                   const std::vector<float>& b, const std::vector<float>& dy, const std::vector<int64_t>* kept) {
  const int64_t C = c.channels, S = c.size, F = c.filters, k = c.kernel;
  const int64_t out = (S + 2 * c.pad - k) / c.stride + 1;
  std::vector<double> scale(static_cast<size_t>(C), 1.0);
  if (kept != nullptr) {
    std::fill(scale.begin(), scale.end(), 0.0);
    for (int64_t m : *kept) scale[static_cast<size_t>(m)] = static_cast<double>(C) / static_cast<double>(kept->size());
  }
  std::vector<double> y(static_cast<size_t>(c.batch * F * out * out)), dw(w.size()), db(static_cast<size_t>(F)),
      dx(x.size());
  auto at_x = [&](int64_t n, int64_t m, int64_t h, int64_t v) { return ((n * C + m) * S + h) * S + v; };
  for (int64_t n = 0; n < c.batch; ++n)
    for (int64_t f = 0; f < F; ++f)
      for (int64_t oh = 0; oh < out; ++oh)
        for (int64_t ow = 0; ow < out; ++ow) {
          const int64_t o = ((n * F + f) * out + oh) * out + ow;
          double sum = c.bias ? b[static_cast<size_t>(f)] : 0.0;
          db[static_cast<size_t>(f)] += dy[static_cast<size_t>(o)];
          for (int64_t m = 0; m < C; ++m)
            for (int64_t ki = 0; ki < k; ++ki)
              for (int64_t kj = 0; kj < k; ++kj) {
                const int64_t h = oh * c.stride - c.pad + ki, v = ow * c.stride - c.pad + kj;
                if (h < 0 || h >= S || v < 0 || v >= S) continue;
                const size_t wi = static_cast<size_t>((f * C + m) * k * k + ki * k + kj);
                const size_t xi = static_cast<size_t>(at_x(n, m, h, v));
                const double s = scale[static_cast<size_t>(m)];
                sum += s * x[xi] * w[wi];
                dw[wi] += s * dy[static_cast<size_t>(o)] * x[xi];
                dx[xi] += s * dy[static_cast<size_t>(o)] * w[wi];
              }
          y[static_cast<size_t>(o)] = sum;
        }
  auto to_float = [](const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); };
  return {to_float(y), to_float(dw), to_float(db), to_float(dx)};
}

void CheckCase(const ConvCase& c, bool site) {
  INFO("C " << c.channels << " S " << c.size << " F " << c.filters << " k " << c.kernel << " s " << c.stride << " p "
            << c.pad << " batch " << c.batch << (c.bias ? " bias" : "") << (site ? " site" : ""));
  std::vector<int64_t> kept;
  if (site) {
    std::mt19937 pick(static_cast<uint32_t>(c.channels * 31 + c.batch));
    std::vector<int64_t> all(static_cast<size_t>(c.channels));
    for (int64_t m = 0; m < c.channels; ++m) all[static_cast<size_t>(m)] = m;
    std::shuffle(all.begin(), all.end(), pick);
    kept.assign(all.begin(), all.begin() + (c.channels - ChannelsDropped(0.4, c.channels)));
    std::sort(kept.begin(), kept.end());
  }
  Run run(CaseNet(c, site), c.batch, site ? &kept : nullptr);
  std::mt19937 rng(static_cast<uint32_t>(c.size * 7 + c.kernel));
  const Tensor data = sieve::testing::RandomTensor({c.batch, c.channels, c.size, c.size}, rng);
  Tensor labels = Tensor::Zeros({c.batch}, DType::kInt32);
  for (int64_t n = 0; n < c.batch; ++n) labels.data<int32_t>()[n] = static_cast<int32_t>(n % 3);
  REQUIRE(run.exec->Bind(run.net.inputs.front(), data).ok());
  REQUIRE(run.exec->Bind(run.net.labels.front(), labels).ok());
  const Status st = run.exec->Run({.iteration = 0, .seed = 5});
  INFO(st.ToString());
  REQUIRE(st.ok());

  const std::vector<float> x = run.Get("act.out"), dy = run.Get("conv.out.grad");
  const std::vector<float> b = c.bias ? run.arena.param("conv.b")->ToVector() : std::vector<float>{};
  const Reference want = Convolve(c, x, run.arena.param("conv.w")->ToVector(), b, dy, site ? &kept : nullptr);
  CheckClose(run.Get("conv.out"), want.y, 1e-4, 1e-5);
  CheckClose(run.arena.grad("conv.w")->ToVector(), want.dw, 1e-4, 1e-6);
  if (c.bias) CheckClose(run.arena.grad("conv.b")->ToVector(), want.db, 1e-4, 1e-6);
  const std::vector<float> dx = run.Get("act.out.grad");
  // act's output gradient is the conv's input gradient, dropped maps exactly zero.
  CheckClose(dx, want.dx, 1e-4, 1e-6);
  if (site) {
    const int64_t plane = c.size * c.size;
    for (size_t i = 0; i < dx.size(); ++i) {
      const int64_t m = (static_cast<int64_t>(i) / plane) % c.channels;
      if (!std::binary_search(kept.begin(), kept.end(), m)) REQUIRE(dx[i] == 0.0f);
    }
    const std::vector<float> dw = run.arena.grad("conv.w")->ToVector();
    const int64_t area = c.kernel * c.kernel;
    for (size_t i = 0; i < dw.size(); ++i) {
      const int64_t m = static_cast<int64_t>(i) % (c.channels * area) / area;
      if (!std::binary_search(kept.begin(), kept.end(), m)) REQUIRE(dw[i] == 0.0f);
    }
  }
}

TEST_CASE("Lowered Conv2d matches the reference forward and whole backward", "[lower][conv]") {
  const ConvCase cases[] = {
      {3, 9, 4, 3, 1, 1, 3, true},    // padded 3x3
      {3, 28, 2, 5, 1, 0, 3, true},   // 24x24 unpadded 5x5
      {5, 29, 3, 3, 2, 1, 2, false},  // stride 2, 15x15, no bias
  };
  for (const ConvCase& c : cases) {
    CheckCase(c, false);
    CheckCase(c, true);
  }
}

}  // namespace
}  // namespace sieve::graph
