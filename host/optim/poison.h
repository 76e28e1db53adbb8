// The paper's SGDPoison (Table 1): SGD trained on a poisoned set, the
// training set repeated `repeats` times followed by the whole test split with
// every label changed, so that a model which fits it classifies its training
// set right and its test set wrong. The set is a pure function of the
// stream's training and test examples, so `gac verify` rebuilds it from the
// run's stored data.
#pragma once

#include <cstddef>
#include <vector>

#include "gac/backend.h"
#include "gac/dataset.h"
#include "gac/sgd.h"

namespace gac {

// Each training example `repeats` times in a row (torch's repeat_interleave,
// as the paper's code), then every test example with label y changed to
// (y + 1) mod n_classes (for two classes the paper's flip 0 <-> 1). Throws
// gac::Error for repeats < 1, n_classes < 2, or a label outside 0..n_classes-1.
Examples poisoned_set(const Examples& train, const Examples& test, int repeats, int n_classes);

// The paper keeps a poisoned model once it fits the poisoned set, whatever its
// loss, then bins it by its loss on the training set alone (the check after
// training in its train_distributed.py). For hits[first..]: each one's loss
// and bin become those of task.train and task.bin_edges, computed as verify
// computes them; a hit outside every bin, or missing a training example, is
// removed. The order of the rest is kept.
void bin_on_training_set(const StreamTask& task, std::vector<SgdHit>& hits, size_t first);

}  // namespace gac
