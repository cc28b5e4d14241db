// LSTM lowering: the nodes, parameters, states and views a stacked LSTM lowers to; the forget-gate
// bias through ParamArena; the errors. Numerically, 2-layer LSTMs with T = 3 (last step or whole
// sequence out; dense input or an embedding in front, so a gradient reaches the input; non-zero
// initial states, as a carried state would be) trained one step on the CPU executor: the output,
// the loss and every parameter gradient against a naive per-step reference in double written here,
// the reference's gradients against central finite differences of its loss, and finite
// differences of the executor's own loss.
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "graph/autodiff.h"
#include "graph/lower.h"
#include "graph/verify.h"
#include "runtime/executor.h"
#include "runtime/params/param_arena.h"
#include "tests/testing/random_tensors.h"

namespace sieve::graph {
namespace {

using sieve::testing::RandomValues;

constexpr int64_t kBatch = 2, kSteps = 3, kFeatures = 3, kHidden = 4, kClasses = 3, kVocab = 5;

struct Config {
  bool embedding = false;         // tokens -> Embedding -> LSTM (else a dense input)
  bool return_sequences = false;  // the FC reads every step (flattened) or the last one
  int layers = 2;
};

Layer MakeLayer(std::string name, LayerSpec spec, std::vector<std::string> inputs, std::vector<std::string> outputs) {
  return Layer{
      .name = std::move(name), .spec = std::move(spec), .inputs = std::move(inputs), .outputs = std::move(outputs)};
}

// input -> (embedding) -> lstm -> fc -> softmax cross-entropy.
Network MakeNetwork(const Config& c, LstmSpec lstm = {}) {
  lstm.units = kHidden;
  lstm.layers = c.layers;
  lstm.return_sequences = c.return_sequences;
  Network net;
  if (c.embedding) {
    net.Add(MakeLayer("tokens", InputSpec{.shape = {kSteps}, .dtype = DType::kInt32}, {}, {"tok"}));
    net.Add(MakeLayer("emb", EmbeddingSpec{.vocab = kVocab, .dim = kFeatures}, {"tok"}, {"x"}));
  } else {
    net.Add(MakeLayer("data", InputSpec{.shape = {kSteps, kFeatures}}, {}, {"x"}));
  }
  net.Add(MakeLayer("label", LabelSpec{}, {}, {"y"}));
  net.Add(MakeLayer("lstm", lstm, {"x"}, {"h"}));
  net.Add(MakeLayer("fc", FullyConnectedSpec{.units = kClasses}, {"h"}, {"logits"}));
  net.Add(MakeLayer("loss", SoftmaxCrossEntropySpec{}, {"logits", "y"}, {}));
  return net;
}

LoweredNet LowerOk(const Network& net) {
  StatusOr<LoweredNet> lowered = Lower(net, LowerOptions{.batch = kBatch});
  INFO(lowered.status().ToString());
  REQUIRE(lowered.ok());
  return std::move(lowered).value();
}

// ---------------------------------------------------------------------------------------------
// Structure

TEST_CASE("Lstm lowers to one input GEMM per layer and a recurrent GEMM and gate step per time step", "[lower][lstm]") {
  const LoweredNet net = LowerOk(MakeNetwork(Config{}));
  const Graph& g = net.graph;
  auto node = [&](const char* name) {
    StatusOr<NodeId> id = g.FindNode(name);
    INFO(name << ": " << id.status().ToString());
    REQUIRE(id.ok());
    return g.node(*id);
  };
  auto value = [&](const std::string& name) {
    StatusOr<ValueId> id = g.FindValue(name);
    INFO(name << ": " << id.status().ToString());
    REQUIRE(id.ok());
    return g.value(*id);
  };
  for (const char* l : {"l0", "l1"}) {
    const std::string p = std::string("lstm.") + l;
    CHECK(node((p + ".xproj").c_str()).kind == OpKind::kMatMul);
    CHECK(node((p + ".xproj.bias").c_str()).kind == OpKind::kBiasAdd);
    for (int t = 0; t < kSteps; ++t) {
      const std::string s = ".t" + std::to_string(t);
      const Node& recur = node((p + ".recur" + s).c_str());
      CHECK(recur.kind == OpKind::kMatMul);
      CHECK(std::get<ops::MatMulAttr>(recur.attr).beta == 1.0f);
      CHECK(node((p + ".cell" + s).c_str()).kind == OpKind::kLstmGates);
      // The step's pre-activations: rows (b, t) of xproj, in place.
      const Value& preact = value(p + ".preact" + s);
      REQUIRE(preact.view);
      CHECK(preact.view->offset == t * 4 * kHidden);
      CHECK(preact.view->strides == Shape{kSteps * 4 * kHidden, 1});
      CHECK(g.value(preact.view->base).name == p + ".xproj");
      const Value& h = value(p + ".h" + s);
      REQUIRE(h.view);
      CHECK(h.view->offset == t * kHidden);
      CHECK(g.value(h.view->base).name == p + ".h");
    }
    CHECK(value(p + ".h").planned == Shape{kBatch, kSteps, kHidden});
    CHECK(value(p + ".h0").role == ValueRole::kInput);
    CHECK(value(p + ".c0").role == ValueRole::kInput);
  }
  std::vector<std::string> params;
  for (const ParamDecl& p : net.params) params.push_back(p.name + " " + ShapeToString(p.shape));
  CHECK(params == std::vector<std::string>{"lstm.l0.w [16, 3]", "lstm.l0.u [16, 4]", "lstm.l0.b [16]",
                                           "lstm.l1.w [16, 4]", "lstm.l1.u [16, 4]", "lstm.l1.b [16]", "fc.w [3, 4]",
                                           "fc.b [3]"});
  // The output is a reading view of the top layer's last step.
  const Value& out = g.value(net.blobs.at("h"));
  CHECK(out.planned == Shape{kBatch, kHidden});
  REQUIRE(out.view);
  CHECK(out.producer == kNoNode);
  CHECK(out.view->offset == (kSteps - 1) * kHidden);
  // State carry: (h, c) of the last step of each layer into h0, c0.
  std::vector<std::string> carry;
  for (const auto& [final_state, initial] : net.state_carry)
    carry.push_back(g.value(final_state).name + " -> " + g.value(initial).name);
  CHECK(carry == std::vector<std::string>{"lstm.l0.h.t2 -> lstm.l0.h0", "lstm.l0.c.t2 -> lstm.l0.c0",
                                          "lstm.l1.h.t2 -> lstm.l1.h0", "lstm.l1.c.t2 -> lstm.l1.c0"});
  REQUIRE(net.custom_gradients.size() == 1);
  CHECK(net.custom_gradients[0].nodes.size() == 2 * (2 + 2 * kSteps));

  const LoweredNet seq = LowerOk(MakeNetwork(Config{.return_sequences = true, .layers = 1}));
  CHECK(seq.graph.value(seq.blobs.at("h")).name == "lstm.l0.h");
  CHECK(seq.graph.value(seq.blobs.at("h")).planned == Shape{kBatch, kSteps, kHidden});
}

TEST_CASE("Lstm starts the forget-gate bias at forget_bias", "[lower][lstm]") {
  LstmSpec spec;
  spec.bias_param.init = runtime::InitSpec::Constant(0.25f);
  spec.forget_bias = 2.0f;
  const LoweredNet net = LowerOk(MakeNetwork(Config{.layers = 1}, spec));
  runtime::ParamArena arena;
  for (const ParamDecl& p : net.params) REQUIRE(arena.Register(p.name, p.shape, p.spec).ok());
  REQUIRE(arena.Finalize(Device::CPU(), ops::SolverType::kSGD).ok());
  REQUIRE(arena.Initialize(5).ok());
  for (const runtime::ParamEntry& e : arena.entries()) {
    if (e.name != "lstm.l0.b") continue;
    const std::vector<float> b = e.param.ToVector();
    for (int64_t j = 0; j < 4 * kHidden; ++j) {
      INFO("b[" << j << "]");
      CHECK(b[j] == (j >= kHidden && j < 2 * kHidden ? 2.0f : 0.25f));
    }
  }
}

TEST_CASE("ParamArena rejects a constant run outside the parameter", "[lower][lstm]") {
  runtime::ParamArena arena;
  runtime::ParamSpec spec;
  spec.init_runs.push_back({.offset = 6, .count = 4, .value = 1.0f});
  const Status st = arena.Register("b", {8}, spec);
  REQUIRE_FALSE(st.ok());
  CHECK_THAT(st.message(), Catch::Contains("'b' [8]") && Catch::Contains("from element 6"));
}

TEST_CASE("Lstm reports bad settings and inputs naming the layer", "[lower][lstm]") {
  Network net;
  net.Add(MakeLayer("data", InputSpec{.shape = {7}}, {}, {"x"}));
  net.Add(MakeLayer("lstm", LstmSpec{.units = 4}, {"x"}, {"h"}));
  StatusOr<LoweredNet> lowered = Lower(net, LowerOptions{.batch = 2});
  REQUIRE_FALSE(lowered.ok());
  CHECK_THAT(lowered.status().message(), Catch::Contains("layer 'lstm' (Lstm)") && Catch::Contains("[2, 7]") &&
                                             Catch::Contains("[batch, steps, features]"));

  Network no_units;
  no_units.Add(MakeLayer("data", InputSpec{.shape = {3, 2}}, {}, {"x"}));
  no_units.Add(MakeLayer("lstm", LstmSpec{}, {"x"}, {"h"}));
  lowered = Lower(no_units, LowerOptions{.batch = 2});
  REQUIRE_FALSE(lowered.ok());
  CHECK_THAT(lowered.status().message(), Catch::Contains("layer 'lstm' (Lstm)") && Catch::Contains("units"));
}

// ---------------------------------------------------------------------------------------------
// The reference: the network of MakeNetwork, step by step in double.

using Vec = std::vector<double>;
using ParamMap = std::map<std::string, Vec>;

struct Feeds {
  Vec x;                             // [B, T, X] (dense input)
  std::vector<int32_t> tokens;       // [B, T] (embedding input)
  std::vector<int32_t> labels;       // [B]
  std::map<std::string, Vec> state;  // "lstm.l<l>.h0" / ".c0" -> [B, H]
};

struct Reference {
  double loss = 0.0;
  Vec out;         // the LSTM's output blob
  ParamMap grads;  // by parameter name
};

double Sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

Reference RunReference(const Config& c, const ParamMap& p, const Feeds& f) {
  const int64_t B = kBatch, T = kSteps, H = kHidden;
  Reference r;
  // x [B][T][X]
  Vec x = f.x;
  if (c.embedding) {
    x.assign(B * T * kFeatures, 0.0);
    for (int64_t bt = 0; bt < B * T; ++bt)
      for (int64_t k = 0; k < kFeatures; ++k) x[bt * kFeatures + k] = p.at("emb.w")[f.tokens[bt] * kFeatures + k];
  }
  // Forward, keeping every layer's input, gates (activated) and states.
  struct LayerTrace {
    int64_t in_features;
    Vec in, gates, h, c;  // in [B*T, X_l], gates [B*T, 4H], h and c [B*T, H]
  };
  std::vector<LayerTrace> trace;
  Vec in = x;
  int64_t in_features = kFeatures;
  for (int l = 0; l < c.layers; ++l) {
    const std::string p_name = "lstm.l" + std::to_string(l);
    const Vec &w = p.at(p_name + ".w"), &u = p.at(p_name + ".u"), &bias = p.at(p_name + ".b");
    const Vec &h0 = f.state.at(p_name + ".h0"), &c0 = f.state.at(p_name + ".c0");
    LayerTrace lt{in_features, in, Vec(B * T * 4 * H), Vec(B * T * H), Vec(B * T * H)};
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t) {
        const int64_t row = b * T + t;
        for (int64_t j = 0; j < H; ++j) {
          double pre[4];
          for (int gate = 0; gate < 4; ++gate) {
            const int64_t n = gate * H + j;
            double sum = bias[n];
            for (int64_t k = 0; k < in_features; ++k) sum += w[n * in_features + k] * in[row * in_features + k];
            for (int64_t k = 0; k < H; ++k) sum += u[n * H + k] * (t == 0 ? h0[b * H + k] : lt.h[(row - 1) * H + k]);
            pre[gate] = sum;
          }
          const double i = Sigmoid(pre[0]), fg = Sigmoid(pre[1]), g = std::tanh(pre[2]), o = Sigmoid(pre[3]);
          const double c_prev = t == 0 ? c0[b * H + j] : lt.c[(row - 1) * H + j];
          const double cell = fg * c_prev + i * g;
          lt.gates[row * 4 * H + j] = i;
          lt.gates[row * 4 * H + H + j] = fg;
          lt.gates[row * 4 * H + 2 * H + j] = g;
          lt.gates[row * 4 * H + 3 * H + j] = o;
          lt.c[row * H + j] = cell;
          lt.h[row * H + j] = o * std::tanh(cell);
        }
      }
    in = lt.h;
    in_features = H;
    trace.push_back(std::move(lt));
  }
  // The FC reads the last step [B, H] or the whole sequence flattened [B, T*H].
  const Vec& top = trace.back().h;
  const int64_t K = c.return_sequences ? T * H : H;
  Vec feat(B * K);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t k = 0; k < K; ++k)
      feat[b * K + k] = c.return_sequences ? top[b * T * H + k] : top[(b * T + T - 1) * H + k];
  r.out = c.return_sequences ? top : feat;
  const Vec &fw = p.at("fc.w"), &fb = p.at("fc.b");
  Vec dlogits(B * kClasses);
  for (int64_t b = 0; b < B; ++b) {
    double logits[kClasses], max = -1e300, total = 0.0;
    for (int64_t n = 0; n < kClasses; ++n) {
      logits[n] = fb[n];
      for (int64_t k = 0; k < K; ++k) logits[n] += fw[n * K + k] * feat[b * K + k];
      max = std::max(max, logits[n]);
    }
    for (int64_t n = 0; n < kClasses; ++n) total += std::exp(logits[n] - max);
    for (int64_t n = 0; n < kClasses; ++n) {
      const double prob = std::exp(logits[n] - max) / total;
      dlogits[b * kClasses + n] = (prob - (n == f.labels[b] ? 1.0 : 0.0)) / B;
    }
    r.loss += (std::log(total) + max - logits[f.labels[b]]) / B;
  }

  // Backward.
  Vec& dfw = r.grads["fc.w"] = Vec(kClasses * K);
  Vec& dfb = r.grads["fc.b"] = Vec(kClasses);
  Vec dfeat(B * K);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t n = 0; n < kClasses; ++n) {
      const double d = dlogits[b * kClasses + n];
      dfb[n] += d;
      for (int64_t k = 0; k < K; ++k) {
        dfw[n * K + k] += d * feat[b * K + k];
        dfeat[b * K + k] += d * fw[n * K + k];
      }
    }
  Vec dseq(B * T * H);  // the gradient of the current layer's h sequence
  for (int64_t b = 0; b < B; ++b)
    for (int64_t k = 0; k < K; ++k)
      dseq[c.return_sequences ? b * T * H + k : (b * T + T - 1) * H + k] = dfeat[b * K + k];
  for (int l = c.layers - 1; l >= 0; --l) {
    const std::string p_name = "lstm.l" + std::to_string(l);
    const LayerTrace& lt = trace[l];
    const int64_t X = lt.in_features;
    const Vec &w = p.at(p_name + ".w"), &u = p.at(p_name + ".u");
    const Vec &h0 = f.state.at(p_name + ".h0"), &c0 = f.state.at(p_name + ".c0");
    Vec& dw = r.grads[p_name + ".w"] = Vec(4 * H * X);
    Vec& du = r.grads[p_name + ".u"] = Vec(4 * H * H);
    Vec& db = r.grads[p_name + ".b"] = Vec(4 * H);
    Vec din(B * T * X);
    for (int64_t b = 0; b < B; ++b) {
      Vec dh_recur(H, 0.0), dc_next(H, 0.0);
      for (int64_t t = T - 1; t >= 0; --t) {
        const int64_t row = b * T + t;
        Vec dpre(4 * H);
        for (int64_t j = 0; j < H; ++j) {
          const double* gt = &lt.gates[row * 4 * H];
          const double i = gt[j], fg = gt[H + j], g = gt[2 * H + j], o = gt[3 * H + j];
          const double tc = std::tanh(lt.c[row * H + j]);
          const double dh = dseq[row * H + j] + dh_recur[j];
          const double dc = dc_next[j] + dh * o * (1 - tc * tc);
          const double c_prev = t == 0 ? c0[b * H + j] : lt.c[(row - 1) * H + j];
          dpre[j] = dc * g * i * (1 - i);
          dpre[H + j] = dc * c_prev * fg * (1 - fg);
          dpre[2 * H + j] = dc * i * (1 - g * g);
          dpre[3 * H + j] = dh * tc * o * (1 - o);
          dc_next[j] = dc * fg;
        }
        std::fill(dh_recur.begin(), dh_recur.end(), 0.0);
        for (int64_t n = 0; n < 4 * H; ++n) {
          db[n] += dpre[n];
          for (int64_t k = 0; k < X; ++k) {
            dw[n * X + k] += dpre[n] * lt.in[row * X + k];
            din[row * X + k] += dpre[n] * w[n * X + k];
          }
          for (int64_t k = 0; k < H; ++k) {
            du[n * H + k] += dpre[n] * (t == 0 ? h0[b * H + k] : lt.h[(row - 1) * H + k]);
            dh_recur[k] += dpre[n] * u[n * H + k];
          }
        }
      }
    }
    dseq = din;
  }
  if (c.embedding) {
    Vec& dtable = r.grads["emb.w"] = Vec(kVocab * kFeatures);
    for (int64_t bt = 0; bt < B * T; ++bt)
      for (int64_t k = 0; k < kFeatures; ++k) dtable[f.tokens[bt] * kFeatures + k] += dseq[bt * kFeatures + k];
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// The executor side: lowered, differentiated, run on the CPU.

std::vector<float> ToFloat(const Vec& v) { return std::vector<float>(v.begin(), v.end()); }

class TrainStep {
 public:
  TrainStep(const Config& c, const ParamMap& params, const Feeds& feeds) {
    net_ = LowerOk(MakeNetwork(c));
    std::vector<NodeId> losses;
    for (const LossHead& head : net_.losses) losses.push_back(head.node);
    StatusOr<Gradients> grads = AppendBackward(net_.graph, losses, net_.custom_gradients);
    INFO(grads.status().ToString());
    REQUIRE(grads.ok());
    const Status verified = Verify(net_.graph);
    INFO(verified.ToString());
    REQUIRE(verified.ok());
    MemoryPlanOptions plan{.keep_alive = {net_.blobs.at("h")}};
    StatusOr<std::unique_ptr<runtime::Executor>> executor = runtime::Executor::Create(net_.graph, Device::CPU(), plan);
    INFO(executor.status().ToString());
    REQUIRE(executor.ok());
    executor_ = std::move(executor).value();
    for (const ParamDecl& p : net_.params) {
      params_[p.name] = Tensor::FromVector(p.shape, ToFloat(params.at(p.name)));
      Bind(p.value, params_[p.name]);
    }
    for (const auto& [param, grad] : grads->params) {
      const Value& v = net_.graph.value(param);
      grads_[v.name] = Tensor::Zeros(v.planned);
      Bind(grad, grads_[v.name]);
    }
    for (ValueId input : net_.inputs) {
      const Value& v = net_.graph.value(input);
      if (v.dtype == DType::kInt32) {
        Tensor t = Tensor::Empty(v.planned, DType::kInt32);
        std::copy(feeds.tokens.begin(), feeds.tokens.end(), t.data<int32_t>());
        Bind(input, t);
      } else {
        Bind(input,
             Tensor::FromVector(v.planned, ToFloat(feeds.state.count(v.name) ? feeds.state.at(v.name) : feeds.x)));
      }
    }
    Tensor labels = Tensor::Empty({kBatch}, DType::kInt32);
    std::copy(feeds.labels.begin(), feeds.labels.end(), labels.data<int32_t>());
    Bind(net_.labels.at(0), labels);
  }

  // Runs forward and backward; returns the loss.
  double Run(Phase only = Phase::kCount) {
    const Status st = only == Phase::kCount ? executor_->Run({}) : executor_->RunPhase(only, {});
    INFO(st.ToString());
    REQUIRE(st.ok());
    return executor_->Stats(net_.losses.at(0).node).loss();
  }
  std::vector<float> Output() const {
    StatusOr<Tensor> t = executor_->Get(net_.blobs.at("h"));
    REQUIRE(t.ok());
    return t->ToVector();
  }
  std::map<std::string, Tensor>& params() { return params_; }
  const std::map<std::string, Tensor>& grads() const { return grads_; }

 private:
  void Bind(ValueId value, const Tensor& t) {
    const Status st = executor_->Bind(value, t);
    INFO(DescribeValue(net_.graph.value(value)) << ": " << st.ToString());
    REQUIRE(st.ok());
  }

  LoweredNet net_;
  std::unique_ptr<runtime::Executor> executor_;
  std::map<std::string, Tensor> params_, grads_;
};

Vec RandomVec(int64_t n, std::mt19937& rng, float scale) {
  const std::vector<float> v = RandomValues(n, rng, -scale, scale);
  return Vec(v.begin(), v.end());
}

void CheckNear(const std::vector<float>& got, const Vec& want, double rtol, double atol, const std::string& what) {
  REQUIRE(got.size() == want.size());
  for (size_t k = 0; k < got.size(); ++k) {
    INFO(what << "[" << k << "]");
    CHECK(std::abs(got[k] - want[k]) <= atol + rtol * std::abs(want[k]));
  }
}

TEST_CASE("Lowered LSTMs match a per-step reference, gradients included", "[lower][lstm]") {
  for (const Config c : {Config{}, Config{.embedding = true, .return_sequences = true}, Config{.layers = 1},
                         Config{.embedding = true, .layers = 3}}) {
    INFO((c.embedding ? "embedding" : "dense")
         << " input, " << (c.return_sequences ? "sequence" : "last step") << " out, " << c.layers << " layers");
    std::mt19937 rng(91);
    // Parameters as the lowering declares them, random; non-zero initial states.
    ParamMap params;
    for (const ParamDecl& p : LowerOk(MakeNetwork(c)).params)
      params[p.name] = RandomVec(ShapeNumel(p.shape), rng, 0.6f);
    Feeds feeds;
    feeds.x = RandomVec(kBatch * kSteps * kFeatures, rng, 1.0f);
    feeds.tokens = {3, 0, 4, 1, 1, 2};
    feeds.labels = {2, 0};
    for (int l = 0; l < c.layers; ++l)
      for (const char* s : {".h0", ".c0"})
        feeds.state["lstm.l" + std::to_string(l) + s] = RandomVec(kBatch * kHidden, rng, 0.5f);

    const Reference ref = RunReference(c, params, feeds);
    TrainStep step(c, params, feeds);
    const double loss = step.Run();
    CHECK(loss == Approx(ref.loss).epsilon(1e-5));
    CheckNear(step.Output(), ref.out, 1e-5, 1e-6, "output");
    REQUIRE(step.grads().size() == ref.grads.size());
    for (const auto& [name, grad] : ref.grads) CheckNear(step.grads().at(name).ToVector(), grad, 1e-4, 1e-6, name);

    // The reference's gradients are the loss's: central differences in double.
    for (const auto& [name, values] : params) {
      for (size_t k = 0; k < values.size(); ++k) {
        const double h = 1e-6;
        ParamMap plus = params, minus = params;
        plus[name][k] += h;
        minus[name][k] -= h;
        const double numeric = (RunReference(c, plus, feeds).loss - RunReference(c, minus, feeds).loss) / (2 * h);
        INFO(name << "[" << k << "]");
        CHECK(ref.grads.at(name)[k] == Approx(numeric).margin(1e-8).epsilon(1e-6));
      }
    }
    // And the executor's own loss moves with its gradients (float, so a coarser step).
    for (auto& [name, tensor] : step.params()) {
      const std::vector<float> grad = step.grads().at(name).ToVector();
      float* data = tensor.data<float>();
      for (int64_t k = 0; k < tensor.numel(); ++k) {
        const float h = 5e-3f, saved = data[k];
        data[k] = saved + h;
        const double up = step.Run(Phase::kForward);
        data[k] = saved - h;
        const double down = step.Run(Phase::kForward);
        data[k] = saved;
        INFO(name << "[" << k << "]");
        CHECK(grad[k] == Approx((up - down) / (2.0 * h)).margin(3e-4).epsilon(2e-2));
      }
    }
  }
}

}  // namespace
}  // namespace sieve::graph
