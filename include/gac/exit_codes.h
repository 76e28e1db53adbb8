// gac's exit codes (README "Exit codes"); SLURM scripts and users test them.
#pragma once

namespace gac {

constexpr int kExitFinished = 0;    // done: every cell filled or out of its draw budget
constexpr int kExitMismatch = 1;    // verify: a stored model differs from its regenerated draw
constexpr int kExitError = 2;       // bad input or a refusal: one line "gac: error: ..."
constexpr int kExitInternal = 3;    // a bug: "gac: internal error: ..."
constexpr int kExitResumable = 75;  // stopped early (time limit or signal), all committed: run again to continue

}  // namespace gac
