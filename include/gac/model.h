// Architectures as a flat list of layers over one parameter vector laid out
// in PyTorch state_dict order, so a stored draw loads as a state_dict.
// ModelSpec is plain data: it is passed by value to CUDA kernels.
#pragma once

#include <string>
#include <vector>

#include "gac/hd.h"

namespace gac {

enum class Arch { linear, mlp, lenet };
enum class LayerKind : int32_t { dense, conv, maxpool2 };

// One layer. Activations are [channels][height][width]; dense layers use
// channels = features, height = width = 1 on their output.
struct Layer {
  LayerKind kind;
  int32_t in_c, in_h, in_w;
  int32_t out_c, out_h, out_w;
  int32_t k;            // conv kernel size
  int32_t w_off;        // weight offset in the parameter vector (-1: none)
  int32_t b_off;        // bias offset (-1: no bias)
  int32_t relu;         // apply ReLU to the output
  GAC_HD int32_t in_size() const { return in_c * in_h * in_w; }
  GAC_HD int32_t out_size() const { return out_c * out_h * out_w; }
  GAC_HD int32_t weight_count() const {
    return kind == LayerKind::dense ? out_c * in_size() : kind == LayerKind::conv ? out_c * in_c * k * k : 0;
  }
};

struct ModelSpec {
  static constexpr int kMaxLayers = 16;
  int32_t n_layers = 0;
  Layer layers[kMaxLayers];
  int32_t n_params = 0;
  int32_t n_classes = 0;
  int32_t in_c = 0, in_h = 0, in_w = 0;
  int32_t max_activation = 0;  // largest activation of any layer, in floats
  float norm_divisor = 1.0f;   // each layer's weight norm is divided by this (LeNet: 3)
  GAC_HD int32_t in_size() const { return in_c * in_h * in_w; }
};

struct ModelConfig {
  Arch arch = Arch::mlp;
  int hidden = 10;        // mlp: units per hidden layer
  int layers = 1;         // mlp: number of hidden layers
  bool hidden_bias = false;  // mlp: biases on hidden layers (the paper: none)
  double width = 0.5;     // lenet: channel/width multiplier
};

// One named tensor of the parameter vector, as in a PyTorch state_dict.
struct TensorInfo {
  std::string name;
  std::vector<int> shape;
  int offset = 0;
  int size = 0;
  bool is_weight = false;  // weights (not biases) enter the norm of normalized logits
  int fan_in = 0;          // PyTorch's fan_in of the layer this tensor belongs to
};

struct Model {
  ModelSpec spec;
  std::vector<TensorInfo> tensors;
  std::string arch_name;
  double flops_per_example = 0;  // multiply-adds counted as 2 FLOPs
};

// Builds the model for inputs of shape [in_c, in_h, in_w] (flat features:
// in_c = in_h = 1). Throws gac::Error when the input does not fit the architecture.
Model build_model(const ModelConfig& cfg, int in_c, int in_h, int in_w, int n_classes);

// layout.json text: names, shapes and offsets of the tensors.
std::string layout_json(const Model& model);

Arch parse_arch(const std::string& name);  // throws gac::Error
const char* arch_name(Arch arch);

}  // namespace gac
