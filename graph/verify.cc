// The verifier's rules (listed in verify.h), one function per group, in the order they run.
#include "graph/verify.h"

#include <array>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "ops/kernels/pooling.h"

namespace sieve::graph {

namespace {

constexpr StatusCode kInvalid = StatusCode::kInvalidArgument;

// --- MatMul operand geometry (mirrors ops/matmul/matmul.cc) ---------------------------------

constexpr std::array<ops::Dim, 3> kDims = {ops::Dim::kM, ops::Dim::kN, ops::Dim::kK};
constexpr std::array<char, 3> kOperands = {'a', 'b', 'c'};

bool Spans(char operand, ops::Dim d) {
  switch (operand) {
    case 'a':
      return d == ops::Dim::kM || d == ops::Dim::kK;
    case 'b':
      return d == ops::Dim::kK || d == ops::Dim::kN;
    default:
      return d == ops::Dim::kM || d == ops::Dim::kN;
  }
}

ops::Layout LayoutOf(char operand, ops::Layout a, ops::Layout b, ops::Layout c) {
  return operand == 'a' ? a : operand == 'b' ? b : c;
}

// The GEMM dimensions along an operand's (row, column) axes.
std::array<ops::Dim, 2> StoredDims(char operand, const ops::MatMulAttr& attr) {
  switch (operand) {
    case 'a':
      return attr.trans_a ? std::array{ops::Dim::kK, ops::Dim::kM} : std::array{ops::Dim::kM, ops::Dim::kK};
    case 'b':
      return attr.trans_b ? std::array{ops::Dim::kN, ops::Dim::kK} : std::array{ops::Dim::kK, ops::Dim::kN};
    default:
      return {ops::Dim::kM, ops::Dim::kN};
  }
}

std::optional<ops::Dim> TargetDim(SiteTarget target) {
  switch (target) {
    case SiteTarget::kMatMulM:
      return ops::Dim::kM;
    case SiteTarget::kMatMulN:
      return ops::Dim::kN;
    case SiteTarget::kMatMulK:
      return ops::Dim::kK;
    default:
      return std::nullopt;
  }
}

// --- Implicit convolutions (mirrors ops/matmul/matmul.h, ImplicitConv) ----------------------

// The GEMM dimension an implicit convolution's column matrix spans: the only one a selection or
// site use may decide.
ops::Dim ConvColumnDim(ops::ImplicitConv::Role role) {
  switch (role) {
    case ops::ImplicitConv::Role::kForward:
      return ops::Dim::kK;
    case ops::ImplicitConv::Role::kGradWeight:
      return ops::Dim::kN;
    default:
      return ops::Dim::kM;
  }
}

// One image's GEMM of an implicit convolution: its extents (indexed by ops::Dim) and the shapes
// of the weight [Cout, Cin*kh*kw], an input image [Cin, H, W] and an output image [Cout, Ho, Wo].
struct ConvGemm {
  std::array<int64_t, 3> extent{};
  Shape weight, in_image, out_image;

  // The shapes of A, B and C over `batch` images.
  std::array<Shape, 3> Operands(ops::ImplicitConv::Role role, int64_t batch) const {
    auto batched = [&](const Shape& image) {
      Shape s = {batch};
      s.insert(s.end(), image.begin(), image.end());
      return s;
    };
    switch (role) {
      case ops::ImplicitConv::Role::kForward:
        return {weight, batched(in_image), batched(out_image)};
      case ops::ImplicitConv::Role::kGradWeight:
        return {batched(out_image), batched(in_image), weight};
      default:
        return {weight, batched(out_image), batched(in_image)};
    }
  }
};

// The GEMM of `conv` whose operand A has shape `a` (the weight, or dy for kGradWeight, gives Cout).
StatusOr<ConvGemm> ConvGemmOf(const ops::ImplicitConv& conv, const Shape& a) {
  const ops::ConvGeometry& g = conv.geometry;
  if (Status st = g.Validate(); !st.ok())
    return SIEVE_ERROR(kInvalid, "implicit convolution (" << ConvRoleName(conv.role) << "): " << st.message());
  const bool grad_weight = conv.role == ops::ImplicitConv::Role::kGradWeight;
  SIEVE_ENSURE(a.size() == (grad_weight ? 4u : 2u), kInvalid,
               "implicit convolution (" << ConvRoleName(conv.role) << "): operand a " << ShapeToString(a) << " must be "
                                        << (grad_weight ? "dy [B, Cout, Ho, Wo]" : "W [Cout, Cin*kh*kw]"));
  const int64_t filters = grad_weight ? a[1] : a[0];
  const int64_t patch = g.channels * g.kernel_area();
  const int64_t plane = g.out_plane();
  ConvGemm gemm{.weight = {filters, patch},
                .in_image = {g.channels, g.height, g.width},
                .out_image = {filters, g.out_h(), g.out_w()}};
  switch (conv.role) {
    case ops::ImplicitConv::Role::kForward:
      gemm.extent = {filters, plane, patch};
      break;
    case ops::ImplicitConv::Role::kGradWeight:
      gemm.extent = {filters, patch, plane};
      break;
    default:
      gemm.extent = {patch, plane, filters};
      break;
  }
  return gemm;
}

// Whether `pattern` keeps whole blocks of `block` consecutive indices, as a channel set expanded
// by a grouped use does.
bool KeepsWholeBlocks(const ops::IndexPattern& pattern, int64_t block) {
  const auto* set = std::get_if<ops::ChannelSet>(&pattern);
  if (set == nullptr || set->kept.size() % static_cast<size_t>(block) != 0) return false;
  for (size_t j = 0; j < set->kept.size(); ++j) {
    const int64_t first = set->kept[j - j % static_cast<size_t>(block)];
    if (first % block != 0 || set->kept[j] != first + static_cast<int64_t>(j % static_cast<size_t>(block)))
      return false;
  }
  return true;
}

// CheckMatMulShapes for an implicit convolution: operands of its role's shapes, no transposes or
// tile, and a selection only on the column matrix's dimension, in whole kh*kw blocks, Full.
Status CheckConvShapes(const ops::MatMulAttr& attr, const Shape& a, const Shape& b, const Shape& c) {
  const ops::ImplicitConv& conv = *attr.conv;
  auto context = [&] {
    return "implicit convolution (" + std::string(ConvRoleName(conv.role)) + ", " + conv.geometry.ToString() + "), A " +
           ShapeToString(a) + ", B " + ShapeToString(b) + ", C " + ShapeToString(c);
  };
  SIEVE_ENSURE(!attr.trans_a && !attr.trans_b && !attr.tile, kInvalid,
               context() << ": the role fixes the transposes, and a convolution takes no tile pattern");
  SIEVE_ASSIGN_OR_RETURN(const ConvGemm gemm, ConvGemmOf(conv, a));
  SIEVE_ENSURE(b.size() == 4, kInvalid, context() << ": operand b must be NCHW");
  const std::array<Shape, 3> want = gemm.Operands(conv.role, b[0]);
  const std::array<const Shape*, 3> operands = {&a, &b, &c};
  for (size_t i = 0; i < 3; ++i)
    SIEVE_ENSURE(*operands[i] == want[i], kInvalid,
                 context() << ": operand " << kOperands[i] << " must be " << ShapeToString(want[i]));
  const ops::Dim column = ConvColumnDim(conv.role);
  for (ops::Dim d : kDims) {
    const auto& sel = attr.selection(d);
    if (!sel) continue;
    const int64_t extent = gemm.extent[static_cast<size_t>(d)];
    SIEVE_ENSURE(d == column, kInvalid,
                 context() << ": dimension " << ops::DimName(d) << " carries a selection; only the im2col dimension "
                           << ops::DimName(column) << " may");
    SIEVE_ENSURE(sel->a == ops::Layout::kFull && sel->b == ops::Layout::kFull && sel->c == ops::Layout::kFull, kInvalid,
                 context() << ": dimension " << ops::DimName(d) << " must be Full in every operand");
    SIEVE_ENSURE(sel->extent == extent, kInvalid,
                 context() << ": dimension " << ops::DimName(d) << " has extent " << extent << ", the selection "
                           << sel->extent);
    const std::string why = ops::ValidatePattern(sel->pattern, extent);
    SIEVE_ENSURE(why.empty(), kInvalid, context() << ": dimension " << ops::DimName(d) << ": " << why);
    SIEVE_ENSURE(KeepsWholeBlocks(sel->pattern, conv.geometry.kernel_area()), kInvalid,
                 context() << ": dimension " << ops::DimName(d) << " must keep whole input maps (channel sets of "
                           << conv.geometry.kernel_area() << "-index blocks), got "
                           << ops::PatternToString(sel->pattern));
  }
  return Status::Ok();
}

// --- Operand packings ----------------------------------------------------------------------

// One packed axis of one operand of a node.
struct Packing {
  bool output = false;
  int index = 0;
  int axis = 0;
  SiteId site{};
  int64_t group = 1;
  auto Key() const { return std::tuple(output, index, axis, Index(site), group); }
  bool operator<(const Packing& o) const { return Key() < o.Key(); }
};

class Verifier {
 public:
  explicit Verifier(const Graph& graph) : g_(graph) {}

  Status Run() {
    SIEVE_RETURN_IF_ERROR(CheckNames());
    SIEVE_RETURN_IF_ERROR(CheckSites());
    SIEVE_RETURN_IF_ERROR(CheckValues());
    for (const Node& n : g_.nodes()) SIEVE_RETURN_IF_ERROR(CheckNode(n));
    return CheckDataflow();
  }

 private:
  const Value& V(ValueId id) const { return g_.value(id); }

  // "input 1 'fc1.w'" / "output 0 'fc1.out'"
  std::string Operand(const Node& n, bool output, int index) const {
    const ValueId id = output ? n.outputs[index] : n.inputs[index];
    std::ostringstream os;
    os << (output ? "output " : "input ") << index << " '" << V(id).name << "'";
    return os.str();
  }

  template <typename T>
  static Status CheckUniqueNames(const std::vector<T>& table, const char* what, const char* sigil) {
    std::unordered_map<std::string, int32_t> seen;
    for (const T& entry : table) {
      SIEVE_ENSURE(!entry.name.empty(), kInvalid, what << " " << sigil << Index(entry.id) << " has no name");
      auto [it, inserted] = seen.emplace(entry.name, Index(entry.id));
      SIEVE_ENSURE(inserted, kInvalid,
                   "two " << what << "s are named '" << entry.name << "': " << sigil << it->second << " and " << sigil
                          << Index(entry.id));
    }
    return Status::Ok();
  }

  Status CheckNames() const {
    for (int i = 0; i < g_.num_values(); ++i)
      SIEVE_ENSURE(Index(g_.values()[i].id) == i, kInvalid,
                   "value at position " << i << " has id %" << Index(g_.values()[i].id));
    for (int i = 0; i < g_.num_nodes(); ++i)
      SIEVE_ENSURE(Index(g_.nodes()[i].id) == i, kInvalid,
                   "node at position " << i << " has id #" << Index(g_.nodes()[i].id));
    for (int i = 0; i < g_.num_sites(); ++i)
      SIEVE_ENSURE(Index(g_.sites()[i].id) == i, kInvalid,
                   "site at position " << i << " has id $" << Index(g_.sites()[i].id));
    SIEVE_RETURN_IF_ERROR(CheckUniqueNames(g_.values(), "value", "%"));
    SIEVE_RETURN_IF_ERROR(CheckUniqueNames(g_.nodes(), "node", "#"));
    return CheckUniqueNames(g_.sites(), "site", "$");
  }

  Status CheckSites() const {
    for (const DropoutSite& s : g_.sites()) {
      SIEVE_ENSURE(s.kind < SiteKind::kCount, kInvalid, DescribeSite(s) << ": unknown site kind");
      SIEVE_ENSURE(s.rate >= 0.0 && s.rate < 1.0, kInvalid,
                   DescribeSite(s) << ": rate " << s.rate << " is outside [0, 1)");
      SIEVE_ENSURE(s.scaling < ScaleMode::kCount, kInvalid, DescribeSite(s) << ": unknown scale mode");
      if (s.kind == SiteKind::kTile) {
        SIEVE_ENSURE(s.tile_rows >= 1 && s.tile_cols >= 1, kInvalid,
                     DescribeSite(s) << ": tile shape " << s.tile_rows << "x" << s.tile_cols << " must be positive");
      } else {
        SIEVE_ENSURE(s.width >= 1, kInvalid, DescribeSite(s) << ": width " << s.width << " must be positive");
      }
      SIEVE_RETURN_IF_ERROR(CheckSitePattern(s));
    }
    return Status::Ok();
  }

  Status CheckValues() const {
    for (const Value& v : g_.values()) {
      SIEVE_ENSURE(v.role < ValueRole::kCount, kInvalid, DescribeValue(v) << ": unknown role");
      SIEVE_ENSURE(v.dtype == DType::kFloat32 || v.dtype == DType::kInt32, kInvalid,
                   DescribeValue(v) << ": only float32 and int32 values are supported");
      SIEVE_ENSURE(v.role != ValueRole::kLabel || v.dtype == DType::kInt32, kInvalid,
                   DescribeValue(v) << ": labels must be int32");
      for (int64_t d : v.planned) SIEVE_ENSURE(d >= 0, kInvalid, DescribeValue(v) << ": negative planned extent");
      SIEVE_ENSURE(v.live.size() == v.planned.size(), kInvalid,
                   DescribeValue(v) << ": live shape " << ShapeToString(v.live) << " has rank " << v.live.size()
                                    << ", planned " << ShapeToString(v.planned) << " rank " << v.planned.size());
      for (size_t i = 0; i < v.live.size(); ++i)
        SIEVE_ENSURE(v.live[i] >= 0 && v.live[i] <= v.planned[i], kInvalid,
                     DescribeValue(v) << ": live shape " << ShapeToString(v.live) << " exceeds planned "
                                      << ShapeToString(v.planned) << " on axis " << i);
      std::set<int> axes;
      for (const PackedAxis& p : v.packed) {
        SIEVE_ENSURE(g_.has_site(p.site), kInvalid,
                     DescribeValue(v) << ": packed by site $" << Index(p.site) << ", which does not exist");
        const DropoutSite& s = g_.site(p.site);
        SIEVE_ENSURE(s.kind == SiteKind::kRow || s.kind == SiteKind::kChannel, kInvalid,
                     DescribeValue(v) << ": packed by " << DescribeSite(s) << "; only row and channel sites pack");
        SIEVE_ENSURE(p.axis >= 0 && p.axis < static_cast<int>(v.planned.size()), kInvalid,
                     DescribeValue(v) << ": packed along axis " << p.axis << ", which it does not have");
        SIEVE_ENSURE(axes.insert(p.axis).second, kInvalid,
                     DescribeValue(v) << ": axis " << p.axis << " is packed twice");
        SIEVE_ENSURE(p.group >= 1 && v.planned[p.axis] == s.width * p.group, kInvalid,
                     DescribeValue(v) << ": axis " << p.axis << " has planned extent " << v.planned[p.axis] << " but "
                                      << DescribeSite(s) << " packs " << s.width << " units x group " << p.group);
      }
      if (v.view) SIEVE_RETURN_IF_ERROR(CheckView(v));
      if (g_.shapes_current()) SIEVE_RETURN_IF_ERROR(CheckLive(v));
    }
    return Status::Ok();
  }

  // A view stays inside its storage root's planned buffer and matches its base's dtype.
  Status CheckView(const Value& v) const {
    const ValueView& view = *v.view;
    SIEVE_ENSURE(g_.has_value(view.base) && view.base != v.id, kInvalid,
                 DescribeValue(v) << ": views %" << Index(view.base) << ", which is not another value of the graph");
    const Value& base = V(view.base);
    SIEVE_ENSURE(base.dtype == v.dtype, kInvalid,
                 DescribeValue(v) << ": a view must have the dtype of its base " << DescribeValue(base));
    SIEVE_ENSURE(
        IsLeafRole(v.role) == IsLeafRole(base.role), kInvalid,
        DescribeValue(v) << ": a view of " << DescribeValue(base) << " must be a leaf exactly when its base is");
    SIEVE_ENSURE(view.offset >= 0, kInvalid, DescribeValue(v) << ": negative view offset " << view.offset);
    SIEVE_ENSURE(view.strides.empty() || view.strides.size() == v.planned.size(), kInvalid,
                 DescribeValue(v) << ": " << view.strides.size() << " view strides for rank " << v.planned.size());
    for (int64_t stride : view.strides) SIEVE_ENSURE(stride >= 0, kInvalid, DescribeValue(v) << ": negative stride");
    // The last element the view can address, at its planned shape.
    const Shape strides = view.strides.empty() ? ContiguousStrides(v.planned) : view.strides;
    int64_t last = g_.StorageOffset(v.id);
    for (size_t i = 0; i < v.planned.size(); ++i) {
      if (v.planned[i] == 0) return Status::Ok();
      last += (v.planned[i] - 1) * strides[i];
    }
    const Value& root = V(g_.StorageRoot(v.id));
    SIEVE_ENSURE(last < ShapeNumel(root.planned), kInvalid,
                 DescribeValue(v) << ": reaches element " << last << " of " << DescribeValue(root) << ", which has "
                                  << ShapeNumel(root.planned));
    return Status::Ok();
  }

  // Live shapes are current: they must be what ResolveLiveShapes would set.
  Status CheckLive(const Value& v) const {
    for (size_t axis = 0; axis < v.planned.size(); ++axis) {
      int64_t expected = v.planned[axis];
      for (const PackedAxis& p : v.packed) {
        if (p.axis != static_cast<int>(axis)) continue;
        const DropoutSite& s = g_.site(p.site);
        if (!s.pattern) {  // no pattern drawn yet: nothing to compare with
          expected = v.live[axis];
          continue;
        }
        if (const auto* row = std::get_if<ops::RowPattern>(&*s.pattern))
          expected = ops::KeptCount(ExpandPattern(*row, p.group), v.planned[axis]);
        if (const auto* set = std::get_if<ops::ChannelSet>(&*s.pattern))
          expected = ops::KeptCount(ExpandPattern(*set, p.group), v.planned[axis]);
      }
      SIEVE_ENSURE(v.live[axis] == expected, kInvalid,
                   DescribeValue(v) << ": live extent " << v.live[axis] << " on axis " << axis << " should be "
                                    << expected << " under the current patterns");
    }
    return Status::Ok();
  }

  Status CheckNode(const Node& n) const {
    SIEVE_ENSURE(n.kind < OpKind::kCount, kInvalid, DescribeNode(n) << ": unknown kind " << static_cast<int>(n.kind));
    SIEVE_ENSURE(n.phase < Phase::kCount, kInvalid, DescribeNode(n) << ": unknown phase");
    for (size_t i = 0; i < n.inputs.size(); ++i)
      SIEVE_ENSURE(g_.has_value(n.inputs[i]), kInvalid,
                   DescribeNode(n) << ": input " << i << " is %" << Index(n.inputs[i]) << ", not a value of the graph ("
                                   << g_.num_values() << " values)");
    for (size_t i = 0; i < n.outputs.size(); ++i)
      SIEVE_ENSURE(g_.has_value(n.outputs[i]), kInvalid,
                   DescribeNode(n) << ": output " << i << " is %" << Index(n.outputs[i])
                                   << ", not a value of the graph (" << g_.num_values() << " values)");
    SIEVE_RETURN_IF_ERROR(CheckArityAndAttr(n));
    SIEVE_RETURN_IF_ERROR(CheckDtypesAndShapes(n));
    SIEVE_RETURN_IF_ERROR(CheckSiteUses(n));
    if (n.kind == OpKind::kMatMul) SIEVE_RETURN_IF_ERROR(CheckMatMul(n));
    if (n.kind == OpKind::kLstmGates || n.kind == OpKind::kLstmGatesBackward) SIEVE_RETURN_IF_ERROR(CheckLstm(n));
    return Status::Ok();
  }

  // LSTM gate operands: the gate matrices [B, 4H], every other operand [B, H].
  Status CheckLstm(const Node& n) const {
    const bool forward = n.kind == OpKind::kLstmGates;
    const Value& gates = V(n.inputs[0]);  // preact (forward) or gates (backward)
    SIEVE_ENSURE(gates.planned.size() == 2 && gates.planned[1] % 4 == 0, kInvalid,
                 DescribeNode(n) << ": " << Operand(n, false, 0) << " " << ShapeToString(gates.planned)
                                 << " must be [batch, 4 * hidden]");
    const Shape wide = gates.planned, narrow = {wide[0], wide[1] / 4};
    auto check = [&](bool output, int index, const Shape& want) {
      const Value& v = V(output ? n.outputs[index] : n.inputs[index]);
      SIEVE_ENSURE(v.planned == want, kInvalid,
                   DescribeNode(n) << ": " << Operand(n, output, index) << " is " << ShapeToString(v.planned)
                                   << ", expected " << ShapeToString(want) << " to match " << Operand(n, false, 0)
                                   << " " << ShapeToString(wide));
      return Status::Ok();
    };
    for (int i = 1; i < static_cast<int>(n.inputs.size()); ++i) SIEVE_RETURN_IF_ERROR(check(false, i, narrow));
    // Forward outputs (h, c, gates); backward outputs (dpreact, dc_prev).
    const std::vector<Shape> outputs = forward ? std::vector{narrow, narrow, wide} : std::vector{wide, narrow};
    for (int i = 0; i < static_cast<int>(outputs.size()); ++i) SIEVE_RETURN_IF_ERROR(check(true, i, outputs[i]));
    return Status::Ok();
  }

  Status CheckArityAndAttr(const Node& n) const {
    const OpInfo& info = GetOpInfo(n.kind);
    const int inputs = static_cast<int>(n.inputs.size());
    const int max_inputs = info.inputs + (info.base == BaseInput::kNone ? 0 : 1);
    const int min_inputs = info.inputs + (info.base == BaseInput::kRequired ? 1 : 0);
    SIEVE_ENSURE(
        static_cast<int>(n.outputs.size()) == info.outputs, kInvalid,
        DescribeNode(n) << ": has " << n.outputs.size() << " outputs, " << info.name << " has " << info.outputs);
    SIEVE_ENSURE(inputs >= min_inputs && inputs <= max_inputs, kInvalid,
                 DescribeNode(n) << ": has " << inputs << " inputs, " << info.name << " takes " << min_inputs
                                 << (max_inputs != min_inputs ? " or " + std::to_string(max_inputs) : std::string())
                                 << (info.base == BaseInput::kNone ? "" : " (the last one the base)"));
    SIEVE_ENSURE(n.attr.index() == info.attr, kInvalid,
                 DescribeNode(n) << ": attribute is " << AttrName(n.attr) << ", " << info.name << " carries "
                                 << AttrName(info.attr));
    if (const std::optional<float> beta = AttrBeta(n.attr); beta && *beta != 0.0f) {
      SIEVE_ENSURE(info.base != BaseInput::kNone, kInvalid,
                   DescribeNode(n) << ": beta " << *beta << " needs a prior output to accumulate into, and "
                                   << info.name << " takes none; beta must be 0");
      SIEVE_ENSURE(n.has_base(), kInvalid,
                   DescribeNode(n) << ": beta " << *beta
                                   << " accumulates into the output's prior value; pass it as input " << info.inputs
                                   << " (the base)");
    }
    if (n.kind == OpKind::kChannelBiasAdd || n.kind == OpKind::kChannelBiasBackward)
      SIEVE_ENSURE(!std::get<BiasAttr>(n.attr).cols, kInvalid,
                   DescribeNode(n) << ": a per-channel bias takes no column pattern");
    if (const auto* act = std::get_if<ActivationAttr>(&n.attr))
      SIEVE_ENSURE(act->kind < ops::Activation::kCount, kInvalid, DescribeNode(n) << ": unknown activation");
    if (const auto* pool = std::get_if<PoolAttr>(&n.attr)) {
      if (Status st = ops::ValidatePoolingGeometry(pool->geometry); !st.ok())
        return SIEVE_ERROR(kInvalid, DescribeNode(n) << ": " << st.message());
    }
    if (const auto* drop = std::get_if<DropoutAttr>(&n.attr)) {
      SIEVE_ENSURE(g_.has_site(drop->site), kInvalid,
                   DescribeNode(n) << ": dropout site $" << Index(drop->site) << " does not exist");
      const DropoutSite& s = g_.site(drop->site);
      SIEVE_ENSURE(s.kind == SiteKind::kBernoulli, kInvalid,
                   DescribeNode(n) << ": Bernoulli dropout names " << DescribeSite(s) << ", not a Bernoulli site");
      SIEVE_ENSURE(
          drop->rate == static_cast<float>(s.rate), kInvalid,
          DescribeNode(n) << ": rate " << drop->rate << " differs from " << DescribeSite(s) << "'s " << s.rate);
    }
    return Status::Ok();
  }

  Status CheckDtypesAndShapes(const Node& n) const {
    const OpInfo& info = GetOpInfo(n.kind);
    auto check_dtype = [&](bool output, int i, uint32_t int32_mask) {
      const Value& v = V(output ? n.outputs[i] : n.inputs[i]);
      const DType want = (int32_mask >> i) & 1 ? DType::kInt32 : DType::kFloat32;
      SIEVE_ENSURE(v.dtype == want, kInvalid,
                   DescribeNode(n) << ": " << Operand(n, output, i) << " is " << DTypeName(v.dtype) << ", " << info.name
                                   << " needs " << DTypeName(want));
      return Status::Ok();
    };
    for (int i = 0; i < info.inputs; ++i) SIEVE_RETURN_IF_ERROR(check_dtype(false, i, info.int32_inputs));
    for (int i = 0; i < info.outputs; ++i) SIEVE_RETURN_IF_ERROR(check_dtype(true, i, info.int32_outputs));

    // Operands that must look exactly like output 0: the base, and the kind's like_output inputs.
    // Equal planned shapes and packings give equal live shapes once those are current.
    const Value& out = V(n.outputs[0]);
    auto packing_of = [](const Value& v) {
      std::set<std::tuple<int, int32_t, int64_t>> s;
      for (const PackedAxis& p : v.packed) s.emplace(p.axis, Index(p.site), p.group);
      return s;
    };
    auto check_like = [&](int i, const char* why) {
      const Value& in = V(n.inputs[i]);
      SIEVE_ENSURE(in.dtype == out.dtype && in.planned == out.planned, kInvalid,
                   DescribeNode(n) << ": " << why << " " << DescribeValue(in)
                                   << " must have the dtype and planned shape of " << DescribeValue(out));
      SIEVE_ENSURE(
          packing_of(in) == packing_of(out), kInvalid,
          DescribeNode(n) << ": " << why << " " << DescribeValue(in) << " must be packed like " << DescribeValue(out));
      return Status::Ok();
    };
    if (n.has_base()) SIEVE_RETURN_IF_ERROR(check_like(info.inputs, "base"));
    for (int i = 0; i < info.inputs; ++i)
      if ((info.like_output >> i) & 1) SIEVE_RETURN_IF_ERROR(check_like(i, ("input " + std::to_string(i)).c_str()));
    return Status::Ok();
  }

  // The dense extent of what a use of `target` selects on node n (width * group must equal it),
  // or the reason the node's operands cannot say.
  StatusOr<int64_t> TargetExtent(const Node& n, SiteTarget target) const {
    auto axis_of = [&](const Value& v, int axis) -> StatusOr<int64_t> {
      SIEVE_ENSURE(static_cast<int>(v.planned.size()) == 2, kInvalid,
                   DescribeNode(n) << ": " << DescribeValue(v) << " must be 2-D");
      return v.planned[axis];
    };
    switch (n.kind) {
      case OpKind::kMatMul: {
        const auto& mm = std::get<ops::MatMulAttr>(n.attr);
        const ops::Dim d = *TargetDim(target);
        const Value& a = V(n.inputs[0]);
        const Value& c = V(n.outputs[0]);
        if (mm.conv) {
          const StatusOr<ConvGemm> gemm = ConvGemmOf(*mm.conv, a.planned);
          if (!gemm.ok()) return SIEVE_ERROR(kInvalid, DescribeNode(n) << ": " << gemm.status().message());
          return gemm->extent[static_cast<size_t>(d)];
        }
        if (d == ops::Dim::kK) return axis_of(a, StoredDims('a', mm)[0] == d ? 0 : 1);
        return axis_of(c, d == ops::Dim::kM ? 0 : 1);
      }
      case OpKind::kBiasAdd:
        return ShapeNumel(V(n.inputs[1]).planned);
      case OpKind::kBiasBackward:
        return ShapeNumel(V(n.outputs[0]).planned);
      case OpKind::kGather:
        return axis_of(V(n.inputs[0]), target == SiteTarget::kRows ? 0 : 1);
      case OpKind::kScatter:
        return axis_of(V(n.outputs[0]), target == SiteTarget::kRows ? 0 : 1);
      default:
        return SIEVE_ERROR(kInvalid, DescribeNode(n) << ": " << OpKindName(n.kind) << " has no "
                                                     << SiteTargetName(target) << " extent");
    }
  }

  // The operand axes the uses of n pack (what the values' PackedAxis entries must say).
  std::set<Packing> ImpliedPackings(const Node& n) const {
    std::set<Packing> implied;
    const bool base = n.has_base();
    auto add = [&](bool output, int index, int axis, const SiteUse& use, int64_t group) {
      implied.insert(Packing{output, index, axis, use.site, group});
      // The base is the output's prior value: packed exactly like it.
      if (output && base) implied.insert(Packing{false, GetOpInfo(n.kind).inputs, axis, use.site, group});
    };
    for (const SiteUse& use : n.sites) {
      const int64_t g = use.group;
      switch (n.kind) {
        case OpKind::kMatMul: {
          const auto& mm = std::get<ops::MatMulAttr>(n.attr);
          const std::optional<ops::Dim> d = TargetDim(use.target);
          if (!d) break;  // tiles pack nothing
          for (char op : kOperands) {
            if (!Spans(op, *d) || LayoutOf(op, use.a, use.b, use.c) != ops::Layout::kPacked) continue;
            const int axis = StoredDims(op, mm)[0] == *d ? 0 : 1;
            if (op == 'c') {
              add(true, 0, axis, use, g);
            } else {
              add(false, op == 'a' ? 0 : 1, axis, use, g);
            }
          }
          break;
        }
        case OpKind::kBiasAdd:
          add(false, 0, 1, use, g);
          add(true, 0, 1, use, g);
          break;
        case OpKind::kBiasBackward:
          add(false, 0, 1, use, g);
          break;
        case OpKind::kGather:
          add(true, 0, use.target == SiteTarget::kRows ? 0 : 1, use, g);
          break;
        case OpKind::kScatter:
          add(false, 0, use.target == SiteTarget::kRows ? 0 : 1, use, g);
          break;
        default:
          break;
      }
    }
    return implied;
  }

  Status CheckSiteUses(const Node& n) const {
    const OpInfo& info = GetOpInfo(n.kind);
    std::set<SiteTarget> targets;
    for (const SiteUse& use : n.sites) {
      SIEVE_ENSURE(g_.has_site(use.site), kInvalid,
                   DescribeNode(n) << ": uses site $" << Index(use.site) << ", which does not exist");
      const DropoutSite& s = g_.site(use.site);
      SIEVE_ENSURE(use.target < SiteTarget::kCount, kInvalid,
                   DescribeNode(n) << ": use of " << DescribeSite(s) << " has an unknown target");
      const char* target = SiteTargetName(use.target);
      SIEVE_ENSURE(
          info.site_targets & TargetBit(use.target), kInvalid,
          DescribeNode(n) << ": " << info.name << " has no " << target << " for " << DescribeSite(s) << " to decide");
      const bool tile = use.target == SiteTarget::kMatMulTile;
      SIEVE_ENSURE(tile ? s.kind == SiteKind::kTile : (s.kind == SiteKind::kRow || s.kind == SiteKind::kChannel),
                   kInvalid,
                   DescribeNode(n) << ": " << DescribeSite(s) << " cannot decide " << target
                                   << (tile ? " (needs a tile site)" : " (needs a row or channel site)"));
      SIEVE_ENSURE(targets.insert(use.target).second, kInvalid, DescribeNode(n) << ": two site uses decide " << target);
      SIEVE_ENSURE(use.group >= 1, kInvalid,
                   DescribeNode(n) << ": use of " << DescribeSite(s) << " has group " << use.group << ", must be >= 1");
      SIEVE_ENSURE(!use.scale || n.kind == OpKind::kMatMul, kInvalid,
                   DescribeNode(n) << ": only a MatMul can fold " << DescribeSite(s) << "'s scale (into alpha)");
      if (const auto* mm = std::get_if<ops::MatMulAttr>(&n.attr); mm && mm->conv) {
        const ops::Dim im2col = ConvColumnDim(mm->conv->role);
        SIEVE_ENSURE(TargetDim(use.target) == im2col && use.a == ops::Layout::kFull && use.b == ops::Layout::kFull &&
                         use.c == ops::Layout::kFull,
                     kInvalid,
                     DescribeNode(n) << ": an implicit convolution (" << ConvRoleName(mm->conv->role)
                                     << ") takes a use of " << DescribeSite(s) << " only on its im2col dimension "
                                     << ops::DimName(im2col) << ", Full in every operand; got " << target);
      }
      if (tile) {
        SIEVE_ENSURE(
            use.tile_rows < ops::Dim::kCount && use.tile_cols < ops::Dim::kCount && use.tile_rows != use.tile_cols,
            kInvalid, DescribeNode(n) << ": tile use of " << DescribeSite(s) << " needs two distinct GEMM dimensions");
        continue;
      }
      SIEVE_ASSIGN_OR_RETURN(const int64_t extent, TargetExtent(n, use.target));
      SIEVE_ENSURE(s.width * use.group == extent, kInvalid,
                   DescribeNode(n) << ": " << target << " has dense extent " << extent << " but " << DescribeSite(s)
                                   << " spans " << s.width << " units x group " << use.group);
    }
    for (const SiteUse& use : n.sites) {
      if (use.target != SiteTarget::kMatMulTile) continue;
      for (const SiteUse& other : n.sites) {
        const std::optional<ops::Dim> d = TargetDim(other.target);
        SIEVE_ENSURE(!d || (*d != use.tile_rows && *d != use.tile_cols), kInvalid,
                     DescribeNode(n) << ": dimension " << ops::DimName(*d) << " carries both a tile use and a "
                                     << SiteTargetName(other.target) << " use");
      }
    }
    if (info.site_targets == 0) return Status::Ok();  // packing follows like_output (checked above)

    // Every packed operand axis must come from a use, and every use's packing must be on the value.
    std::set<Packing> actual;
    auto collect = [&](bool output, const std::vector<ValueId>& ids) {
      for (int i = 0; i < static_cast<int>(ids.size()); ++i)
        for (const PackedAxis& p : V(ids[i]).packed) actual.insert(Packing{output, i, p.axis, p.site, p.group});
    };
    collect(false, n.inputs);
    collect(true, n.outputs);
    const std::set<Packing> implied = ImpliedPackings(n);
    for (const Packing& p : implied)
      SIEVE_ENSURE(actual.count(p), kInvalid,
                   DescribeNode(n) << ": its use of " << DescribeSite(g_.site(p.site)) << " stores "
                                   << Operand(n, p.output, p.index) << " packed along axis " << p.axis << " (group "
                                   << p.group << "), but the value is not packed there");
    for (const Packing& p : actual)
      SIEVE_ENSURE(implied.count(p), kInvalid,
                   DescribeNode(n) << ": " << Operand(n, p.output, p.index) << " is packed along axis " << p.axis
                                   << " by " << DescribeSite(g_.site(p.site)) << " (group " << p.group
                                   << "), but no site use of the node stores it packed there");
    return Status::Ok();
  }

  Status CheckMatMul(const Node& n) const {
    const auto& mm = std::get<ops::MatMulAttr>(n.attr);
    const Value& a = V(n.inputs[0]);
    const Value& b = V(n.inputs[1]);
    const Value& c = V(n.outputs[0]);
    // Planned shapes are dense: check them with every selection stored Full.
    ops::MatMulAttr dense = mm;
    for (std::optional<ops::DimSelection>* s : {&dense.m, &dense.n, &dense.k})
      if (*s) (*s)->a = (*s)->b = (*s)->c = ops::Layout::kFull;
    if (Status st = CheckMatMulShapes(dense, a.planned, b.planned, c.planned); !st.ok())
      return SIEVE_ERROR(kInvalid, DescribeNode(n) << ": planned shapes: " << st.message());
    if (g_.attrs_current() && g_.shapes_current()) {
      if (Status st = CheckMatMulShapes(mm, a.live, b.live, c.live); !st.ok())
        return SIEVE_ERROR(kInvalid, DescribeNode(n) << ": live shapes: " << st.message());
    }
    return Status::Ok();
  }

  Status CheckDataflow() const {
    std::vector<NodeId> producer(g_.values().size(), kNoNode);
    for (const Node& n : g_.nodes()) {
      for (ValueId out : n.outputs) {
        NodeId& p = producer[Index(out)];
        SIEVE_ENSURE(p == kNoNode, kInvalid,
                     DescribeValue(V(out))
                         << " is produced twice: by " << DescribeNode(g_.node(p)) << " and by " << DescribeNode(n));
        p = n.id;
      }
    }
    for (const Value& v : g_.values()) {
      const NodeId p = producer[Index(v.id)];
      if (IsLeafRole(v.role)) {
        SIEVE_ENSURE(p == kNoNode, kInvalid,
                     DescribeValue(v) << " is a " << ValueRoleName(v.role)
                                      << ", which comes from outside the graph, but " << DescribeNode(g_.node(p))
                                      << " writes it");
      } else {
        // Without a producer, a non-leaf value is a reading view or assembled from writing views.
        SIEVE_ENSURE(p != kNoNode || v.view || g_.IsAssembled(v.id), kInvalid,
                     DescribeValue(v) << " (" << ValueRoleName(v.role) << ") is never produced");
      }
      SIEVE_ENSURE(v.producer == p, kInvalid,
                   DescribeValue(v) << " records producer #" << Index(v.producer) << " but is produced by "
                                    << (p == kNoNode ? std::string("no node") : DescribeNode(g_.node(p))));
    }
    SIEVE_RETURN_IF_ERROR(g_.CheckTopologicalOrder());
    for (const Node& n : g_.nodes()) {
      if (n.phase != Phase::kForward) continue;
      for (ValueId in : n.inputs) {
        const NodeId p = producer[Index(in)];
        SIEVE_ENSURE(p == kNoNode || g_.node(p).phase != Phase::kBackward, kInvalid,
                     DescribeNode(n) << ": a forward node reads " << DescribeValue(V(in)) << ", which the backward "
                                     << DescribeNode(g_.node(p)) << " produces");
      }
    }
    return Status::Ok();
  }

  const Graph& g_;
};

}  // namespace

Status Verify(const Graph& graph) { return Verifier(graph).Run(); }

Status CheckMatMulShapes(const ops::MatMulAttr& attr, const Shape& a, const Shape& b, const Shape& c) {
  if (attr.conv) return CheckConvShapes(attr, a, b, c);
  auto shapes = [&] {
    return "A " + ShapeToString(a) + (attr.trans_a ? "^T" : "") + ", B " + ShapeToString(b) +
           (attr.trans_b ? "^T" : "") + ", C " + ShapeToString(c);
  };
  const std::array<const Shape*, 3> operands = {&a, &b, &c};
  for (size_t i = 0; i < 3; ++i)
    SIEVE_ENSURE(operands[i]->size() == 2, kInvalid,
                 "MatMul operand " << kOperands[i] << " must be 2-D; got " << shapes());
  for (ops::Dim d : kDims) {
    const auto& sel = attr.selection(d);
    int64_t dense = -1;
    if (sel) {
      const std::string why = ops::ValidatePattern(sel->pattern, sel->extent);
      SIEVE_ENSURE(why.empty(), kInvalid, "MatMul dimension " << ops::DimName(d) << ": " << why);
      SIEVE_ENSURE(sel->extent >= 0, kInvalid, "negative extent for " << ops::DimName(d));
      dense = sel->extent;
      SIEVE_ENSURE(!attr.tile || (attr.tile->rows != d && attr.tile->cols != d), kInvalid,
                   "dimension " << ops::DimName(d) << " carries both a tile pattern and an index selection");
    }
    const int64_t kept = sel ? ops::KeptCount(sel->pattern, dense) : -1;
    for (size_t i = 0; i < 3; ++i) {
      const char op = kOperands[i];
      if (!Spans(op, d)) continue;
      const auto dims = StoredDims(op, attr);
      const int64_t stored = dims[0] == d ? (*operands[i])[0] : (*operands[i])[1];
      if (sel && LayoutOf(op, sel->a, sel->b, sel->c) == ops::Layout::kPacked) {
        SIEVE_ENSURE(stored == kept, kInvalid,
                     "MatMul dimension " << ops::DimName(d) << " is packed in operand " << op << " and keeps " << kept
                                         << " of " << dense << " but the operand has " << stored << "; " << shapes());
      } else if (dense < 0) {
        dense = stored;
      } else {
        SIEVE_ENSURE(stored == dense, kInvalid,
                     "MatMul dimension " << ops::DimName(d) << " mismatch: operand " << op << " has " << stored
                                         << ", expected " << dense << "; " << shapes());
      }
    }
  }
  if (attr.tile) {
    const std::string why = ops::ValidatePattern(attr.tile->pattern);
    SIEVE_ENSURE(why.empty(), kInvalid, "MatMul tile selection: " << why);
    SIEVE_ENSURE(attr.tile->rows != attr.tile->cols, kInvalid,
                 "tile pattern needs two distinct dimensions, got " << ops::DimName(attr.tile->rows) << " twice");
  }
  return Status::Ok();
}

}  // namespace sieve::graph
