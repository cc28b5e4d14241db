// The feature-map choice of channel dropout sites, the pass that applies it, the estimates it
// keeps and their byte encoding.
#include "graph/sensitivity_pass.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <utility>
#include <variant>

#include "framework/rng.h"
#include "ops/kernels/channel_stats.h"

namespace sieve::graph {

namespace {

constexpr int64_t kMaxStreamIteration = int64_t{1} << 32;
constexpr int64_t kMaxStreamSite = int64_t{1} << 24;
constexpr uint32_t kEstimatesVersion = 1;

// A uniform in (0, 1) from 32 random bits: never 0 or 1, so a Gumbel key is always finite.
double OpenUniform(uint32_t bits) { return (static_cast<double>(bits) + 0.5) * 0x1p-32; }

// The forward implicit-convolution MatMul whose K (its input's maps) `site` decides, with that use;
// or null.
const Node* ForwardConv(const Graph& graph, SiteId site, const SiteUse** use) {
  for (const Node& node : graph.nodes()) {
    if (node.kind != OpKind::kMatMul || node.phase != Phase::kForward) continue;
    const auto& conv = std::get<ops::MatMulAttr>(node.attr).conv;
    if (!conv || conv->role != ops::ImplicitConv::Role::kForward) continue;
    for (const SiteUse& u : node.sites) {
      if (u.site != site || u.target != SiteTarget::kMatMulK) continue;
      *use = &u;
      return &node;
    }
  }
  return nullptr;
}

Status CheckConfig(const ChannelSiteConfig& config) {
  SIEVE_ENSURE(config.temperature >= 0.0 && std::isfinite(config.temperature), StatusCode::kInvalidArgument,
               "channel site '" << config.site << "': temperature must be finite and >= 0, got " << config.temperature);
  SIEVE_ENSURE(
      config.warmup_iterations >= 0, StatusCode::kInvalidArgument,
      "channel site '" << config.site << "': warmup_iterations must be >= 0, got " << config.warmup_iterations);
  SIEVE_ENSURE(config.ema_weight > 0.0 && config.ema_weight <= 1.0, StatusCode::kInvalidArgument,
               "channel site '" << config.site << "': ema_weight must be in (0, 1], got " << config.ema_weight);
  return Status::Ok();
}

// Little-endian append / read of fixed-size values.
template <typename T>
void Put(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  template <typename T>
  StatusOr<T> Get(const char* what) {
    SIEVE_ENSURE(bytes_.size() - at_ >= sizeof(T), StatusCode::kDataLoss,
                 "sensitivity estimates: truncated at byte " << at_ << " reading " << what);
    T value;
    std::memcpy(&value, bytes_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return value;
  }
  StatusOr<std::string> GetString(uint32_t size) {
    SIEVE_ENSURE(bytes_.size() - at_ >= size, StatusCode::kDataLoss,
                 "sensitivity estimates: truncated at byte " << at_ << " reading a site name of " << size << " bytes");
    std::string s(bytes_.substr(at_, size));
    at_ += size;
    return s;
  }
  bool done() const { return at_ == bytes_.size(); }
  size_t at() const { return at_; }

 private:
  std::string_view bytes_;
  size_t at_ = 0;
};

}  // namespace

std::vector<ChannelSiteConfig> ChannelSiteConfigs(const Network& network) {
  std::vector<ChannelSiteConfig> configs;
  for (const Layer& layer : network.layers()) {
    const auto* spec = std::get_if<DropoutSpec>(&layer.spec);
    if (spec == nullptr || !IsChannelDropout(spec->kind)) continue;
    configs.push_back(ChannelSiteConfig{.site = layer.name + ".site",
                                        .sensitivity = spec->kind == DropoutSpec::Kind::kSensitivity,
                                        .temperature = spec->temperature,
                                        .warmup_iterations = spec->warmup_iterations,
                                        .ema_weight = spec->ema_weight});
  }
  return configs;
}

ops::ChannelSet ChooseChannels(const DropoutSite& site, const ChannelSiteConfig& config,
                               const ChannelEstimates* estimates, uint64_t seed, int64_t iteration) {
  SIEVE_CHECK(iteration >= 0 && iteration < kMaxStreamIteration, "iteration " << iteration);
  const int64_t width = site.width;
  ops::ChannelSet kept;
  const int64_t dropped = ChannelsDropped(site.rate, width);
  if (iteration < config.warmup_iterations || dropped <= 0) {
    kept.kept.resize(static_cast<size_t>(width));
    std::iota(kept.kept.begin(), kept.kept.end(), int64_t{0});
    return kept;
  }
  SIEVE_CHECK(dropped < width, DescribeSite(site) << " would drop all " << width << " maps");
  // Larger key: dropped first.
  std::vector<double> key(static_cast<size_t>(width));
  const bool greedy = config.sensitivity && config.temperature == 0.0;
  const RandomStream stream{seed, MakeStreamId(StreamKind::kChannel, static_cast<uint64_t>(Index(site.id)),
                                               static_cast<uint64_t>(iteration))};
  std::vector<double> normalised(static_cast<size_t>(width), 1.0);
  if (config.sensitivity) {
    SIEVE_CHECK(estimates != nullptr && static_cast<int64_t>(estimates->sensitivity.size()) == width,
                DescribeSite(site) << ": estimates for " << width << " maps needed");
    double sum = 0.0;
    int64_t observed = 0;
    for (int64_t c = 0; c < width; ++c) {
      if (estimates->observed[static_cast<size_t>(c)] == 0) continue;
      sum += estimates->sensitivity[static_cast<size_t>(c)];
      ++observed;
    }
    const double mean = observed > 0 ? sum / static_cast<double>(observed) : 0.0;
    if (mean > 0.0) {
      for (int64_t c = 0; c < width; ++c)
        if (estimates->observed[static_cast<size_t>(c)] > 0)
          normalised[static_cast<size_t>(c)] = estimates->sensitivity[static_cast<size_t>(c)] / mean;
    }
  }
  for (int64_t c = 0; c < width; ++c) {
    const auto i = static_cast<size_t>(c);
    if (greedy) {
      key[i] = -normalised[i];
    } else if (config.sensitivity) {
      key[i] = -normalised[i] / config.temperature - std::log(-std::log(OpenUniform(stream.Bits(i))));
    } else {
      key[i] = OpenUniform(stream.Bits(i));
    }
  }
  // The `dropped` largest keys, ties to the lower index (a fixed order, so greedy choice is
  // deterministic).
  std::vector<int64_t> order(static_cast<size_t>(width));
  std::iota(order.begin(), order.end(), int64_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return key[static_cast<size_t>(a)] > key[static_cast<size_t>(b)]; });
  std::vector<bool> drop(static_cast<size_t>(width), false);
  for (int64_t r = 0; r < dropped; ++r) drop[static_cast<size_t>(order[static_cast<size_t>(r)])] = true;
  kept.kept.reserve(static_cast<size_t>(width - dropped));
  for (int64_t c = 0; c < width; ++c)
    if (!drop[static_cast<size_t>(c)]) kept.kept.push_back(c);
  return kept;
}

StatusOr<std::unique_ptr<SensitivityDropPass>> MakeSensitivityDropPass(const Graph& graph,
                                                                       std::vector<ChannelSiteConfig> configs) {
  std::unique_ptr<SensitivityDropPass> pass(new SensitivityDropPass());
  for (const ChannelSiteConfig& config : configs) {
    SIEVE_RETURN_IF_ERROR(CheckConfig(config));
    SIEVE_ASSIGN_OR_RETURN(const SiteId id, graph.FindSite(config.site));
    const DropoutSite& site = graph.site(id);
    SIEVE_ENSURE(site.kind == SiteKind::kChannel, StatusCode::kInvalidArgument,
                 "sensitivity drop: " << DescribeSite(site) << " is not a channel site");
    SIEVE_ENSURE(Index(id) < kMaxStreamSite, StatusCode::kOutOfRange,
                 DescribeSite(site) << ": channel streams number at most " << kMaxStreamSite << " sites");
    const SiteUse* k_use = nullptr;
    const Node* conv = ForwardConv(graph, id, &k_use);
    SIEVE_ENSURE(conv != nullptr, StatusCode::kInvalidArgument,
                 "sensitivity drop: " << DescribeSite(site)
                                      << " is used by no convolution (the K use of an implicit-convolution MatMul)");
    pass->sites_.push_back(id);
    pass->estimate_of_.push_back(std::nullopt);
    if (config.sensitivity) {
      // The forward convolution y = W col(x): A is the weight, B the input whose maps the site drops.
      const Value& a = graph.value(conv->inputs[1]);
      const Value& w = graph.value(conv->inputs[0]);
      SIEVE_ENSURE(a.planned.size() == 4 && a.planned[1] == site.width && w.planned.size() == 2 &&
                       w.planned[1] == site.width * k_use->group,
                   StatusCode::kInvalidArgument,
                   "sensitivity drop: " << DescribeSite(site) << " of " << site.width << " maps: the conv reads "
                                        << DescribeValue(a) << " with weight " << DescribeValue(w));
      std::optional<ValueId> grad;
      if (auto found = graph.FindValue(w.name + ".grad"); found.ok()) grad = *found;
      const size_t index = pass->estimates_.size();
      const auto n = static_cast<size_t>(site.width);
      pass->estimates_.push_back(ChannelEstimates{.site = site.name,
                                                  .importance = std::vector<double>(n, 0.0),
                                                  .sensitivity = std::vector<double>(n, 0.0),
                                                  .observed = std::vector<int64_t>(n, 0)});
      pass->estimate_of_.back() = index;
      pass->probes_.push_back(SensitivityDropPass::Probe{.site = id,
                                                         .estimates = index,
                                                         .input = a.id,
                                                         .weight = w.id,
                                                         .weight_grad = grad,
                                                         .group = k_use->group,
                                                         .ema_weight = config.ema_weight});
    }
    pass->configs_.push_back(config);
  }
  return pass;
}

Status SensitivityDropPass::Run(Graph& graph, PassContext& context) {
  SIEVE_ENSURE(context.iteration >= 0 && context.iteration < kMaxStreamIteration, StatusCode::kOutOfRange,
               "sensitivity drop: iteration " << context.iteration << " is outside the channel streams' [0, 2^32)");
  for (size_t i = 0; i < sites_.size(); ++i) {
    const SiteId id = sites_[i];
    SIEVE_ENSURE(
        graph.has_site(id) && graph.site(id).name == configs_[i].site && graph.site(id).kind == SiteKind::kChannel,
        StatusCode::kFailedPrecondition,
        "sensitivity drop: the pass was made for channel site '" << configs_[i].site << "' at $" << Index(id)
                                                                 << ", which the graph does not have");
    const ChannelEstimates* estimates = estimate_of_[i] ? &estimates_[*estimate_of_[i]] : nullptr;
    graph.SetSitePattern(id, ChooseChannels(graph.site(id), configs_[i], estimates, context.seed, context.iteration));
  }
  return Status::Ok();
}

Status SensitivityDropPass::Observe(const Graph& graph, const ValueReader& read) {
  for (const Probe& probe : probes_) {
    const DropoutSite& site = graph.site(probe.site);
    SIEVE_ENSURE(probe.weight_grad.has_value(), StatusCode::kFailedPrecondition,
                 "sensitivity drop: " << DescribeSite(site) << ": the graph has no gradient of "
                                      << DescribeValue(graph.value(probe.weight)) << " to measure sensitivity with");
    SIEVE_ENSURE(site.pattern && std::holds_alternative<ops::ChannelSet>(*site.pattern),
                 StatusCode::kFailedPrecondition,
                 "sensitivity drop: " << DescribeSite(site) << " has no channel set this iteration");
    const ops::ChannelSet& kept = std::get<ops::ChannelSet>(*site.pattern);
    SIEVE_ASSIGN_OR_RETURN(const Tensor a, read(probe.input));
    SIEVE_ASSIGN_OR_RETURN(const Tensor w, read(probe.weight));
    SIEVE_ASSIGN_OR_RETURN(const Tensor dw, read(*probe.weight_grad));
    const auto count = static_cast<int64_t>(kept.kept.size());
    Tensor importance = Tensor::Zeros({count}, DType::kFloat32, a.device());
    Tensor sensitivity = Tensor::Zeros({count}, DType::kFloat32, a.device());
    auto fail = [&](const Status& st) {
      return Status(st.code(), "sensitivity drop: " + DescribeSite(site) + ": " + st.message());
    };
    if (Status st = ops::ChannelMeanAbs(a, &kept, importance); !st.ok()) return fail(st);
    if (Status st = ops::ChannelBlockDot(w, dw, probe.group, &kept, sensitivity); !st.ok()) return fail(st);
    const std::vector<float> i_now = importance.ToVector(), s_now = sensitivity.ToVector();
    ChannelEstimates& e = estimates_[probe.estimates];
    for (int64_t r = 0; r < count; ++r) {
      const auto c = static_cast<size_t>(kept.kept[static_cast<size_t>(r)]);
      const double i_value = i_now[static_cast<size_t>(r)];
      const double s_value = std::fabs(static_cast<double>(s_now[static_cast<size_t>(r)]));
      // The first observation starts the average, so early estimates are not biased towards zero.
      const double weight = e.observed[c] == 0 ? 1.0 : probe.ema_weight;
      e.importance[c] += weight * (i_value - e.importance[c]);
      e.sensitivity[c] += weight * (s_value - e.sensitivity[c]);
      ++e.observed[c];
    }
  }
  return Status::Ok();
}

std::vector<ValueId> SensitivityDropPass::ObservedValues() const {
  std::vector<ValueId> values;
  for (const Probe& probe : probes_) values.push_back(probe.input);
  return values;
}

Status SensitivityDropPass::CheckEstimates(const std::vector<ChannelEstimates>& estimates) const {
  std::vector<bool> seen(estimates_.size(), false);
  for (const ChannelEstimates& given : estimates) {
    const auto it = std::find_if(estimates_.begin(), estimates_.end(),
                                 [&](const ChannelEstimates& e) { return e.site == given.site; });
    SIEVE_ENSURE(it != estimates_.end(), StatusCode::kNotFound,
                 "sensitivity estimates for site '" << given.site << "', which is not a sensitivity site here");
    const auto index = static_cast<size_t>(it - estimates_.begin());
    SIEVE_ENSURE(!seen[index], StatusCode::kInvalidArgument,
                 "sensitivity estimates for site '" << given.site << "' appear twice");
    seen[index] = true;
    const size_t n = it->importance.size();
    SIEVE_ENSURE(given.importance.size() == n && given.sensitivity.size() == n && given.observed.size() == n,
                 StatusCode::kInvalidArgument,
                 "sensitivity estimates for site '" << given.site << "' have " << given.importance.size() << "/"
                                                    << given.sensitivity.size() << "/" << given.observed.size()
                                                    << " entries; the site has " << n << " maps");
  }
  return Status::Ok();
}

Status SensitivityDropPass::RestoreEstimates(const std::vector<ChannelEstimates>& estimates) {
  SIEVE_RETURN_IF_ERROR(CheckEstimates(estimates));
  for (const ChannelEstimates& given : estimates)
    for (ChannelEstimates& e : estimates_)
      if (e.site == given.site) e = given;
  return Status::Ok();
}

std::string EncodeEstimates(const std::vector<ChannelEstimates>& estimates) {
  std::string out;
  Put<uint32_t>(out, kEstimatesVersion);
  Put<uint32_t>(out, static_cast<uint32_t>(estimates.size()));
  for (const ChannelEstimates& e : estimates) {
    Put<uint32_t>(out, static_cast<uint32_t>(e.site.size()));
    out += e.site;
    Put<uint64_t>(out, e.importance.size());
    for (size_t c = 0; c < e.importance.size(); ++c) {
      Put<double>(out, e.importance[c]);
      Put<double>(out, e.sensitivity[c]);
      Put<int64_t>(out, e.observed[c]);
    }
  }
  return out;
}

StatusOr<std::vector<ChannelEstimates>> DecodeEstimates(std::string_view bytes) {
  Reader in(bytes);
  SIEVE_ASSIGN_OR_RETURN(const uint32_t version, in.Get<uint32_t>("the version"));
  SIEVE_ENSURE(version == kEstimatesVersion, StatusCode::kDataLoss,
               "sensitivity estimates: version " << version << ", this build reads " << kEstimatesVersion);
  SIEVE_ASSIGN_OR_RETURN(const uint32_t sites, in.Get<uint32_t>("the site count"));
  std::vector<ChannelEstimates> out;
  for (uint32_t s = 0; s < sites; ++s) {
    ChannelEstimates e;
    SIEVE_ASSIGN_OR_RETURN(const uint32_t name_size, in.Get<uint32_t>("a site name's size"));
    SIEVE_ASSIGN_OR_RETURN(e.site, in.GetString(name_size));
    SIEVE_ASSIGN_OR_RETURN(const uint64_t maps, in.Get<uint64_t>("a map count"));
    SIEVE_ENSURE(maps <= (bytes.size() - in.at()) / 24, StatusCode::kDataLoss,
                 "sensitivity estimates: site '" << e.site << "' claims " << maps << " maps, more than the bytes left");
    for (uint64_t c = 0; c < maps; ++c) {
      SIEVE_ASSIGN_OR_RETURN(const double importance, in.Get<double>("an importance"));
      SIEVE_ASSIGN_OR_RETURN(const double sensitivity, in.Get<double>("a sensitivity"));
      SIEVE_ASSIGN_OR_RETURN(const int64_t observed, in.Get<int64_t>("an observation count"));
      e.importance.push_back(importance);
      e.sensitivity.push_back(sensitivity);
      e.observed.push_back(observed);
    }
    out.push_back(std::move(e));
  }
  SIEVE_ENSURE(in.done(), StatusCode::kDataLoss,
               "sensitivity estimates: " << bytes.size() - in.at() << " bytes after the last site");
  return out;
}

}  // namespace sieve::graph
