// Snapshots: full training checkpoints from which training continues exactly (issue 6). A snapshot
// holds the weights, every optimizer state slot, the iteration, the training source's position,
// the carried recurrent state, the pattern-search tables and whatever other state the trainer
// exports (Trainer::ExportState), as named, versioned, CRC-checked sections; docs/checkpoints.md
// gives the layout byte by byte. Files are written atomically (a temporary file, flushed, fsynced
// and renamed into place; framework/file_io.h).
//
// Not here: the weights-only files of Trainer::SaveWeights (read by LoadWeightsFromAny), snapshot
// naming and scheduling (the CLI), and the state itself (each part is owned by the trainer).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "framework/status.h"
#include "runtime/data/batch_source.h"
#include "runtime/trainer.h"

namespace sieve::runtime {

/// What a snapshot file says about itself.
struct SnapshotInfo {
  int64_t iteration = 0;                   ///< training iterations done when it was written
  std::optional<LoaderPosition> position;  ///< the training source's next batch, when one was given
  std::string network;                     ///< a signature of the network (names and shapes of the parameters)
};

/// Writes everything needed to continue training exactly: the weights, the optimizer state (all slots), the
/// iteration, the RNG stream positions, the training source's position (when `source` is not null), carried
/// recurrent state, the pattern-search tables and any extra state sections the trainer has (named, versioned
/// sections: a new section needs no format change). Atomic: temporary file, flush + fsync, rename; a failure at
/// any point leaves an existing file at `path` untouched. Deferred updates are caught up first.
Status SaveSnapshot(Trainer& trainer, const BatchSource* source, const std::string& path);

/// The bytes SaveSnapshot writes (after catching up deferred updates); for writing them elsewhere, e.g. with
/// framework/file_io.h's WriteFileAtomically and its test hook.
StatusOr<std::string> EncodeSnapshot(Trainer& trainer, const BatchSource* source);

/// Restores a snapshot written by SaveSnapshot into a trainer built from the same network and solver
/// settings, and seeks `source` (when not null) to the saved position. Nothing is changed on error. Errors, each
/// naming the path: not a Sieve file; a weights-only file (SaveWeights) given where a snapshot is expected; a
/// corrupted file (which section, checksum); a version this build cannot read; a different network (naming the
/// first parameter that differs, both shapes).
StatusOr<SnapshotInfo> RestoreSnapshot(Trainer& trainer, BatchSource* source, const std::string& path);

/// Reads only the header and info of a snapshot (for `sieve` to check the iteration against max_iter).
StatusOr<SnapshotInfo> ReadSnapshotInfo(const std::string& path);

/// Loads the weights from either a weights file (Trainer::SaveWeights) or a snapshot (the CLI's --weights and
/// `sieve test`); the optimizer state and iteration are left as they are.
Status LoadWeightsFromAny(Trainer& trainer, const std::string& path);

}  // namespace sieve::runtime
