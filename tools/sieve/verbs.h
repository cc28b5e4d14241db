// The verbs of the `sieve` tool, one file each (train.cc, test.cc, time.cc, search.cc,
// export.cc, device_query.cc); main.cc lists them.
#pragma once

#include "tools/sieve/cli.h"

namespace sieve::cli {

extern const Verb kTrainVerb;
extern const Verb kTestVerb;
extern const Verb kTimeVerb;
extern const Verb kSearchVerb;
extern const Verb kExportVerb;
extern const Verb kDeviceQueryVerb;

}  // namespace sieve::cli
