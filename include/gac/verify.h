// `gac verify`: regenerates every stored model from its draw index alone and
// checks it against what the run directory holds.
#pragma once

#include <filesystem>
#include <iosfwd>

namespace gac {

// Checks, for up to `limit` models (0 = all): weights file bit-identical to
// the regenerated draw, training accuracy 1 with the stored loss and bin,
// test accuracy and loss as stored. Prints each mismatch; true if none.
bool verify_run(const std::filesystem::path& dir, int limit, std::ostream& out);

}  // namespace gac
