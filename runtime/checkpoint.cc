// Snapshot files (checkpoint.h): encoding, checked decoding, restore and weight loading. The layout is
// docs/checkpoints.md; keep the two in step.
#include "runtime/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <string_view>
#include <utility>
#include <vector>

#include "framework/file_io.h"
#include "framework/memory.h"

namespace sieve::runtime {

namespace {

constexpr char kSnapshotMagic[8] = {'S', 'I', 'E', 'V', 'E', 'S', 'N', 'P'};
constexpr uint32_t kFormatVersion = 1;
// magic, format version, section count, file size, CRC32 of the 24 bytes before it.
constexpr size_t kHeaderBytes = 28;
// Section header: name (NUL-padded), version, payload length, payload CRC32, CRC32 of the 40 bytes before it.
constexpr size_t kSectionNameBytes = 24;
constexpr size_t kSectionHeaderBytes = kSectionNameBytes + 4 + 8 + 4 + 4;

// The sections this file writes itself; the trainer's (Trainer::ExportState) follow them.
constexpr std::string_view kInfoSection = "info";
constexpr std::string_view kParametersSection = "parameters";
constexpr std::string_view kOptimizerSection = "optimizer";
constexpr uint32_t kInfoVersion = 1, kParametersVersion = 1, kOptimizerVersion = 1;

struct Section {
  std::string name;
  uint32_t version = 0;
  std::string_view payload;
};

// One parameter as a snapshot stores it.
struct StoredParam {
  std::string name;
  Shape shape;
  std::vector<float> values;
};

Status InFile(const std::string& path, const Status& status) {
  return Status(status.code(), "'" + path + "': " + status.message());
}

bool HasMagic(std::string_view bytes, const char (&magic)[8]) {
  return bytes.size() >= sizeof(magic) && std::memcmp(bytes.data(), magic, sizeof(magic)) == 0;
}

std::string Hex(uint32_t value) {
  char text[11];
  std::snprintf(text, sizeof(text), "0x%08x", value);
  return text;
}

// The names and shapes of the parameters: "fc1.w [40, 12]; fc1.b [40]".
std::string NetworkSignature(const ParamArena& arena) {
  std::string signature;
  for (const ParamEntry& p : arena)
    signature += (signature.empty() ? "" : "; ") + p.name + " " + ShapeToString(p.shape);
  return signature;
}

void PutSection(ByteWriter& out, std::string_view name, uint32_t version, std::string_view payload) {
  SIEVE_CHECK(!name.empty() && name.size() < kSectionNameBytes, "section name '" << name << "'");
  ByteWriter header;
  char padded[kSectionNameBytes] = {};
  std::memcpy(padded, name.data(), name.size());
  header.PutArray(padded, kSectionNameBytes);
  header.Put(version);
  header.Put(static_cast<uint64_t>(payload.size()));
  header.Put(Crc32(payload));
  header.Put(Crc32(header.bytes()));
  out.PutArray(header.bytes().data(), header.bytes().size());
  out.PutArray(payload.data(), payload.size());
}

// The section count of a file of `file_size` bytes that starts with `bytes`, checked: magic, checksum, format
// version, size.
StatusOr<uint32_t> ParseHeader(std::string_view bytes, uint64_t file_size) {
  if (!HasMagic(bytes, kSnapshotMagic)) {
    SIEVE_ENSURE(!HasMagic(bytes, Trainer::kWeightsMagic), StatusCode::kInvalidArgument,
                 "is a weights file, not a snapshot: pass it as --weights");
    return SIEVE_ERROR(StatusCode::kInvalidArgument, "is not a Sieve snapshot (it does not start with 'SIEVESNP')");
  }
  SIEVE_ENSURE(bytes.size() >= kHeaderBytes, StatusCode::kDataLoss,
               "is truncated: " << bytes.size() << " bytes, less than the " << kHeaderBytes << "-byte header");
  ByteReader in(bytes.substr(sizeof(kSnapshotMagic), kHeaderBytes - sizeof(kSnapshotMagic)));
  uint32_t version = 0, count = 0, stored_crc = 0;
  uint64_t stored_size = 0;
  in.Get(version);
  in.Get(count);
  in.Get(stored_size);
  in.Get(stored_crc);
  const uint32_t crc = Crc32(bytes.substr(0, kHeaderBytes - 4));
  SIEVE_ENSURE(
      crc == stored_crc, StatusCode::kDataLoss,
      "is corrupt: the file header fails its checksum (stored " << Hex(stored_crc) << ", computed " << Hex(crc) << ")");
  SIEVE_ENSURE(version == kFormatVersion, StatusCode::kUnimplemented,
               "is snapshot format version " << version << "; this build reads version " << kFormatVersion);
  SIEVE_ENSURE(file_size == stored_size, StatusCode::kDataLoss,
               "is " << (file_size < stored_size ? "truncated" : "corrupt") << ": it has " << file_size
                     << " bytes; its header says " << stored_size);
  return count;
}

// The section at the start of `bytes` (section `index` of `count`), checked; advances `bytes` past it.
StatusOr<Section> ParseSection(std::string_view& bytes, uint32_t index, uint32_t count) {
  SIEVE_ENSURE(bytes.size() >= kSectionHeaderBytes, StatusCode::kDataLoss,
               "is truncated in the header of section " << index + 1 << " of " << count);
  ByteReader in(bytes.substr(0, kSectionHeaderBytes));
  char padded[kSectionNameBytes];
  uint32_t version = 0, payload_crc = 0, header_crc = 0;
  uint64_t length = 0;
  in.GetArray(padded, kSectionNameBytes);
  in.Get(version);
  in.Get(length);
  in.Get(payload_crc);
  in.Get(header_crc);
  const uint32_t crc = Crc32(bytes.substr(0, kSectionHeaderBytes - 4));
  SIEVE_ENSURE(crc == header_crc, StatusCode::kDataLoss,
               "is corrupt: the header of section " << index + 1 << " of " << count << " fails its checksum (stored "
                                                    << Hex(header_crc) << ", computed " << Hex(crc) << ")");
  Section section;
  section.name.assign(padded, strnlen(padded, kSectionNameBytes));
  section.version = version;
  bytes.remove_prefix(kSectionHeaderBytes);
  SIEVE_ENSURE(length <= bytes.size(), StatusCode::kDataLoss,
               "is truncated in section '" << section.name << "' (" << index + 1 << " of " << count << "): it needs "
                                           << length << " bytes, " << bytes.size() << " are left");
  section.payload = bytes.substr(0, length);
  const uint32_t computed = Crc32(section.payload);
  SIEVE_ENSURE(computed == payload_crc, StatusCode::kDataLoss,
               "is corrupt: section '" << section.name << "' (" << index + 1 << " of " << count
                                       << ") fails its checksum (stored " << Hex(payload_crc) << ", computed "
                                       << Hex(computed) << ")");
  bytes.remove_prefix(length);
  return section;
}

// Every section of a whole file, checked, with nothing after the last.
StatusOr<std::vector<Section>> ParseFile(std::string_view bytes) {
  SIEVE_ASSIGN_OR_RETURN(const uint32_t count, ParseHeader(bytes, bytes.size()));
  bytes.remove_prefix(kHeaderBytes);
  std::vector<Section> sections;
  for (uint32_t i = 0; i < count; ++i) {
    SIEVE_ASSIGN_OR_RETURN(Section section, ParseSection(bytes, i, count));
    SIEVE_ENSURE(
        std::none_of(sections.begin(), sections.end(), [&](const Section& s) { return s.name == section.name; }),
        StatusCode::kDataLoss, "is corrupt: section '" << section.name << "' appears twice");
    sections.push_back(std::move(section));
  }
  SIEVE_ENSURE(bytes.empty(), StatusCode::kDataLoss,
               "is corrupt: " << bytes.size() << " bytes follow the last of its " << count << " sections");
  return sections;
}

// The section `name` in a version this build reads.
StatusOr<const Section*> Find(const std::vector<Section>& sections, std::string_view name, uint32_t version) {
  const auto it = std::find_if(sections.begin(), sections.end(), [&](const Section& s) { return s.name == name; });
  SIEVE_ENSURE(it != sections.end(), StatusCode::kDataLoss, "has no section '" << name << "'");
  SIEVE_ENSURE(
      it->version <= version, StatusCode::kUnimplemented,
      "has section '" << name << "' version " << it->version << "; this build reads versions up to " << version);
  return &*it;
}

// The info section: what SnapshotInfo reports, and the batches per epoch of the source (0 without one).
struct StoredInfo {
  SnapshotInfo info;
  int64_t batches_per_epoch = 0;
};

StatusOr<StoredInfo> DecodeInfo(const Section& section) {
  ByteReader in(section.payload);
  StoredInfo stored;
  uint8_t has_position = 0;
  LoaderPosition position;
  in.Get(stored.info.iteration);
  in.Get(has_position);
  in.Get(position.epoch);
  in.Get(position.batch);
  in.Get(stored.batches_per_epoch);
  in.GetString(stored.info.network, section.payload.size());
  SIEVE_ENSURE(in.ok() && in.remaining() == 0 && stored.info.iteration >= 0 && has_position <= 1, StatusCode::kDataLoss,
               "section 'info' is malformed");
  if (has_position) stored.info.position = position;
  return stored;
}

StatusOr<std::vector<StoredParam>> DecodeParameters(const Section& section) {
  ByteReader in(section.payload);
  uint32_t count = 0;
  in.Get(count);
  std::vector<StoredParam> params;
  for (uint32_t i = 0; in.ok() && i < count; ++i) {
    StoredParam p;
    uint32_t rank = 0;
    const bool read = in.GetString(p.name) && in.Get(rank) && rank <= 8;
    p.shape.resize(read ? rank : 0);
    in.GetArray(p.shape.data(), p.shape.size());
    int64_t numel = 1;
    for (int64_t d : p.shape) numel = d >= 0 && numel <= static_cast<int64_t>(in.remaining()) ? numel * d : -1;
    SIEVE_ENSURE(read && in.ok() && numel >= 0 && static_cast<size_t>(numel) <= in.remaining() / sizeof(float),
                 StatusCode::kDataLoss, "section 'parameters' is malformed in parameter " << i + 1 << " of " << count);
    p.values.resize(static_cast<size_t>(numel));
    in.GetArray(p.values.data(), p.values.size());
    params.push_back(std::move(p));
  }
  SIEVE_ENSURE(in.ok() && in.remaining() == 0, StatusCode::kDataLoss, "section 'parameters' is malformed");
  return params;
}

// The first difference between the stored parameters and the network's, in the network's order.
Status CheckSameNetwork(const std::vector<StoredParam>& stored, const ParamArena& arena) {
  std::map<std::string_view, const StoredParam*> by_name;
  for (const StoredParam& p : stored) by_name[p.name] = &p;
  for (const ParamEntry& p : arena) {
    const auto it = by_name.find(p.name);
    SIEVE_ENSURE(it != by_name.end(), StatusCode::kInvalidArgument,
                 "is a snapshot of another network: it has no parameter '" << p.name << "' " << ShapeToString(p.shape));
    SIEVE_ENSURE(it->second->shape == p.shape, StatusCode::kInvalidArgument,
                 "is a snapshot of another network: parameter '"
                     << p.name << "' is " << ShapeToString(it->second->shape) << " in the snapshot but "
                     << ShapeToString(p.shape) << " in the network");
  }
  for (const StoredParam& p : stored)
    SIEVE_ENSURE(arena.IndexOf(p.name).ok(), StatusCode::kInvalidArgument,
                 "is a snapshot of another network: it has parameter '" << p.name << "' " << ShapeToString(p.shape)
                                                                        << ", which the network does not");
  return Status::Ok();
}

// Writes the stored weights into the arena (same network, checked).
void CopyWeights(const std::vector<StoredParam>& stored, ParamArena& arena) {
  for (const StoredParam& p : stored) {
    const ParamEntry& entry = arena.entries()[static_cast<size_t>(*arena.IndexOf(p.name))];
    CopyBytes(entry.param.raw_data(), entry.param.device(), p.values.data(), Device::CPU(),
              p.values.size() * sizeof(float));
  }
}

// The optimizer's state slots, per parameter in the arena's order, per slot.
StatusOr<std::vector<std::vector<std::vector<float>>>> DecodeOptimizer(const Section& section,
                                                                       const ParamArena& arena) {
  ByteReader in(section.payload);
  uint8_t type = 0;
  uint32_t slots = 0;
  in.Get(type);
  in.Get(slots);
  SIEVE_ENSURE(in.ok() && type < static_cast<uint8_t>(ops::SolverType::kCount), StatusCode::kDataLoss,
               "section 'optimizer' is malformed");
  const auto solver = static_cast<ops::SolverType>(type);
  SIEVE_ENSURE(solver == arena.solver_type() && static_cast<int>(slots) == arena.state_slots(),
               StatusCode::kInvalidArgument,
               "was written by the " << ops::SolverTypeName(solver) << " solver (" << slots
                                     << " state slots); this trainer's solver is "
                                     << ops::SolverTypeName(arena.solver_type()) << " (" << arena.state_slots() << ")");
  std::vector<std::vector<std::vector<float>>> state;
  for (const ParamEntry& p : arena) {
    std::vector<std::vector<float>>& slot_values = state.emplace_back(slots);
    for (std::vector<float>& values : slot_values) {
      values.resize(static_cast<size_t>(ShapeNumel(p.shape)));
      SIEVE_ENSURE(in.GetArray(values.data(), values.size()), StatusCode::kDataLoss,
                   "section 'optimizer' is truncated in parameter '" << p.name << "'");
    }
  }
  SIEVE_ENSURE(in.remaining() == 0, StatusCode::kDataLoss,
               "section 'optimizer' has " << in.remaining() << " bytes after its parameters");
  return state;
}

}  // namespace

StatusOr<std::string> EncodeSnapshot(Trainer& trainer, const BatchSource* source) {
  SIEVE_RETURN_IF_ERROR(trainer.SyncWeights());
  const ParamArena& arena = trainer.params();
  SIEVE_ASSIGN_OR_RETURN(const std::vector<StateSection> state, trainer.ExportState());

  ByteWriter info;
  info.Put(trainer.iteration());
  const LoaderPosition position = source ? source->position() : LoaderPosition{};
  info.Put(static_cast<uint8_t>(source != nullptr));
  info.Put(position.epoch);
  info.Put(position.batch);
  info.Put(source ? source->batches_per_epoch() : int64_t{0});
  info.PutString(NetworkSignature(arena));

  ByteWriter parameters;
  parameters.Put(static_cast<uint32_t>(arena.size()));
  ByteWriter optimizer;
  optimizer.Put(static_cast<uint8_t>(arena.solver_type()));
  optimizer.Put(static_cast<uint32_t>(arena.state_slots()));
  for (const ParamEntry& p : arena) {
    parameters.PutString(p.name);
    parameters.Put(static_cast<uint32_t>(p.shape.size()));
    parameters.PutArray(p.shape.data(), p.shape.size());
    const std::vector<float> values = p.param.ToVector();
    parameters.PutArray(values.data(), values.size());
    for (const Tensor& slot : p.state) {
      const std::vector<float> slot_values = slot.ToVector();
      optimizer.PutArray(slot_values.data(), slot_values.size());
    }
  }

  ByteWriter out;
  out.PutArray(kSnapshotMagic, sizeof(kSnapshotMagic));
  out.Put(kFormatVersion);
  out.Put(static_cast<uint32_t>(3 + state.size()));
  const size_t size_at = out.bytes().size();
  out.Put(uint64_t{0});  // the file size, known at the end
  out.Put(uint32_t{0});  // the header's CRC32, after it
  PutSection(out, kInfoSection, kInfoVersion, info.bytes());
  PutSection(out, kParametersSection, kParametersVersion, parameters.bytes());
  PutSection(out, kOptimizerSection, kOptimizerVersion, optimizer.bytes());
  for (const StateSection& section : state) {
    SIEVE_CHECK(section.name != kInfoSection && section.name != kParametersSection && section.name != kOptimizerSection,
                "the trainer's state section '" << section.name << "' takes a name the snapshot uses itself");
    PutSection(out, section.name, section.version, section.bytes);
  }
  std::string bytes = out.Take();
  const uint64_t size = bytes.size();
  std::memcpy(bytes.data() + size_at, &size, sizeof(size));
  const uint32_t crc = Crc32(std::string_view(bytes).substr(0, kHeaderBytes - 4));
  std::memcpy(bytes.data() + kHeaderBytes - 4, &crc, sizeof(crc));
  return bytes;
}

Status SaveSnapshot(Trainer& trainer, const BatchSource* source, const std::string& path) {
  SIEVE_ASSIGN_OR_RETURN(const std::string bytes, EncodeSnapshot(trainer, source));
  return WriteFileAtomically(path, bytes, "snapshot");
}

StatusOr<SnapshotInfo> RestoreSnapshot(Trainer& trainer, BatchSource* source, const std::string& path) {
  SIEVE_ASSIGN_OR_RETURN(const std::string bytes, ReadFileBytes(path, "snapshot"));
  auto restore = [&]() -> StatusOr<SnapshotInfo> {
    SIEVE_ASSIGN_OR_RETURN(const std::vector<Section> sections, ParseFile(bytes));
    SIEVE_ASSIGN_OR_RETURN(const Section* info_section, Find(sections, kInfoSection, kInfoVersion));
    SIEVE_ASSIGN_OR_RETURN(const Section* parameters_section, Find(sections, kParametersSection, kParametersVersion));
    SIEVE_ASSIGN_OR_RETURN(const Section* optimizer_section, Find(sections, kOptimizerSection, kOptimizerVersion));
    SIEVE_ASSIGN_OR_RETURN(const StoredInfo stored, DecodeInfo(*info_section));
    const SnapshotInfo& info = stored.info;
    SIEVE_ASSIGN_OR_RETURN(const std::vector<StoredParam> params, DecodeParameters(*parameters_section));
    ParamArena& arena = trainer.params();
    SIEVE_RETURN_IF_ERROR(CheckSameNetwork(params, arena));
    SIEVE_ASSIGN_OR_RETURN(const auto state, DecodeOptimizer(*optimizer_section, arena));
    if (source) {
      SIEVE_ENSURE(info.position.has_value(), StatusCode::kInvalidArgument,
                   "was saved without a training source position, so the source cannot continue where it was");
      SIEVE_ENSURE(stored.batches_per_epoch == source->batches_per_epoch(), StatusCode::kInvalidArgument,
                   "was saved with a training source of " << stored.batches_per_epoch
                                                          << " batches per epoch; this one has "
                                                          << source->batches_per_epoch());
    }
    std::vector<StateSection> trainer_state;
    for (const Section& s : sections)
      if (s.name != kInfoSection && s.name != kParametersSection && s.name != kOptimizerSection)
        trainer_state.push_back({s.name, s.version, std::string(s.payload)});
    // ImportState checks everything before it changes anything; after it nothing fails but a Seek that the
    // checks above vetted.
    SIEVE_RETURN_IF_ERROR(trainer.ImportState(trainer_state));
    CopyWeights(params, arena);
    for (size_t i = 0; i < arena.entries().size(); ++i) {
      const ParamEntry& p = arena.entries()[i];
      for (size_t s = 0; s < p.state.size(); ++s)
        CopyBytes(p.state[s].raw_data(), p.state[s].device(), state[i][s].data(), Device::CPU(),
                  state[i][s].size() * sizeof(float));
    }
    Synchronize(arena.device());
    if (source) SIEVE_RETURN_IF_ERROR(source->Seek(*info.position));
    return info;
  };
  StatusOr<SnapshotInfo> info = restore();
  if (!info.ok()) return InFile(path, info.status());
  return info;
}

StatusOr<SnapshotInfo> ReadSnapshotInfo(const std::string& path) {
  // The header and the first section only: the rest of the file is not read.
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  SIEVE_ENSURE(in.good(), StatusCode::kNotFound, "cannot open snapshot file '" << path << "'");
  const auto file_size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  std::string bytes(kHeaderBytes + kSectionHeaderBytes, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  bytes.resize(static_cast<size_t>(in.gcount()));
  auto read_info = [&]() -> StatusOr<SnapshotInfo> {
    SIEVE_ASSIGN_OR_RETURN(const uint32_t count, ParseHeader(bytes, file_size));
    SIEVE_ENSURE(count >= 1 && bytes.size() == kHeaderBytes + kSectionHeaderBytes, StatusCode::kDataLoss,
                 "is truncated: it has no complete first section");
    uint64_t length = 0;
    std::memcpy(&length, bytes.data() + kHeaderBytes + kSectionNameBytes + 4, sizeof(length));
    // Read at most what the file holds; ParseSection reports a short one.
    std::string payload(static_cast<size_t>(std::min<uint64_t>(length, uint64_t{1} << 30)), '\0');
    in.read(payload.data(), static_cast<std::streamsize>(payload.size()));
    payload.resize(static_cast<size_t>(in.gcount()));
    bytes += payload;
    std::string_view rest = std::string_view(bytes).substr(kHeaderBytes);
    SIEVE_ASSIGN_OR_RETURN(const Section section, ParseSection(rest, 0, count));
    SIEVE_ENSURE(section.name == kInfoSection, StatusCode::kDataLoss,
                 "is corrupt: its first section is '" << section.name << "', not 'info'");
    SIEVE_ENSURE(
        section.version <= kInfoVersion, StatusCode::kUnimplemented,
        "has section 'info' version " << section.version << "; this build reads versions up to " << kInfoVersion);
    SIEVE_ASSIGN_OR_RETURN(const StoredInfo stored, DecodeInfo(section));
    return stored.info;
  };
  StatusOr<SnapshotInfo> info = read_info();
  if (!info.ok()) return InFile(path, info.status());
  return info;
}

Status LoadWeightsFromAny(Trainer& trainer, const std::string& path) {
  SIEVE_ASSIGN_OR_RETURN(const std::string bytes, ReadFileBytes(path, "weights or snapshot"));
  if (HasMagic(bytes, Trainer::kWeightsMagic)) return trainer.LoadWeights(path);
  auto load = [&]() -> Status {
    SIEVE_ENSURE(HasMagic(bytes, kSnapshotMagic), StatusCode::kInvalidArgument,
                 "is neither a Sieve weights file nor a snapshot");
    SIEVE_ASSIGN_OR_RETURN(const std::vector<Section> sections, ParseFile(bytes));
    SIEVE_ASSIGN_OR_RETURN(const Section* parameters_section, Find(sections, kParametersSection, kParametersVersion));
    SIEVE_ASSIGN_OR_RETURN(const std::vector<StoredParam> params, DecodeParameters(*parameters_section));
    SIEVE_RETURN_IF_ERROR(CheckSameNetwork(params, trainer.params()));
    // Deferred rows catch up on their optimizer state first; the loaded weights are then current.
    SIEVE_RETURN_IF_ERROR(trainer.SyncWeights());
    CopyWeights(params, trainer.params());
    Synchronize(trainer.params().device());
    return Status::Ok();
  };
  const Status status = load();
  return status.ok() ? status : InFile(path, status);
}

}  // namespace sieve::runtime
