// A run's stored models as the forward pass reads them (report --probes, plot --figure boundary).
#pragma once

#include <string>
#include <vector>

#include "gac/model.h"
#include "gac/store.h"

namespace gac {

// The model spec of the run's config.
ModelSpec stored_model_spec(const Store& store);

// Model m's weights file as parameters; throws gac::Error starting with
// `what` when it does not hold spec.n_params numbers.
std::vector<float> stored_params(const Store& store, const StoredModel& m, const ModelSpec& spec, const std::string& what);

}  // namespace gac
