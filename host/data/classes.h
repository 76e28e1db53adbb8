// Class choice: the original labels that a training set's class indices
// 0..k-1 stand for.
#pragma once

#include <string>
#include <vector>

#include "gac/dataset.h"

namespace gac::data_detail {

// "3, 7" for messages: the first 20 labels, then "...".
std::string label_list(const std::vector<int>& labels);

// Classes (original labels, in class-index order) that a training set of
// `data` may have: as many as the model has outputs, each in the training
// split, none twice.
void check_classes(const Dataset& data, const std::vector<int>& classes);

// Checks the class settings against the labels in the files; sets the
// number of classes of every training set, and d.class_ids when they are
// fixed for the whole run.
void choose_classes(const DataConfig& cfg, Dataset& d, const std::vector<int>& test_labels);

}  // namespace gac::data_detail
